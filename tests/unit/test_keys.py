"""API key material and permissions (core/keys.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from core.errors import PermissionDenied, ValidationError
from core.keys import (
    KEY_RANDOM_LENGTH,
    KEY_START_LENGTH,
    MAX_KEY_LENGTH,
    MIN_KEY_LENGTH,
    RESOURCE_ACTIONS,
    generate_key,
    has_permission,
    hash_key,
    hashes_equal,
    looks_like_key,
    parse_permissions,
    require_permission,
    serialize_permissions,
    split_permission,
    verify_key,
)

PREFIX = "nm_"

# SHA-256("abc") = ba7816bf...15ad, as base64url without padding (FIPS 180-2 vector).
ABC_BETTER_AUTH_HASH = "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"

_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _independent_better_auth_hash(key: str) -> str:
    """Better Auth's defaultKeyHasher, rebuilt by hand: bits -> 6-bit groups -> alphabet."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    bits = "".join(f"{byte:08b}" for byte in digest)
    bits += "0" * (-len(bits) % 6)
    std = "".join(_STD[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))
    return std.translate(str.maketrans("+/", "-_"))


def test_hash_matches_better_auth_known_vector() -> None:
    assert hash_key("abc") == ABC_BETTER_AUTH_HASH
    assert _independent_better_auth_hash("abc") == ABC_BETTER_AUTH_HASH


def test_hash_matches_independent_implementation_for_generated_and_unicode_keys() -> None:
    for key in (generate_key(PREFIX).key, "nm_ünïcödé", "", "x" * 1000):
        assert hash_key(key) == _independent_better_auth_hash(key)
        assert "=" not in hash_key(key)


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("basenc")), reason="no tools")
def test_hash_matches_openssl_basenc_pipeline() -> None:
    key = generate_key(PREFIX).key
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"],
        input=key.encode(),
        capture_output=True,
        check=True,
    ).stdout
    encoded = subprocess.run(
        ["basenc", "--base64url"], input=digest, capture_output=True, check=True
    ).stdout
    assert hash_key(key) == encoded.decode().strip().rstrip("=")


def test_generated_keys_are_unique_and_have_prefix_start_and_hash() -> None:
    keys = [generate_key(PREFIX) for _ in range(200)]
    assert len({k.key for k in keys}) == 200
    for k in keys:
        assert k.prefix == PREFIX
        assert k.key.startswith(PREFIX)
        assert len(k.key) == len(PREFIX) + KEY_RANDOM_LENGTH
        assert k.start == k.key[:KEY_START_LENGTH]
        assert k.hash == hash_key(k.key)
        assert looks_like_key(k.key, prefixes=[PREFIX])


def test_generated_key_repr_never_shows_plaintext() -> None:
    k = generate_key(PREFIX)
    assert k.key not in repr(k)


@pytest.mark.parametrize("prefix", ["", "has space", "x" * 33, "nm:"])
def test_generate_key_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValidationError) as info:
        generate_key(prefix)
    assert info.value.field == "prefix"


def test_verify_key_and_constant_time_comparison() -> None:
    k = generate_key(PREFIX)
    assert verify_key(k.key, k.hash)
    assert not verify_key(k.key + "a", k.hash)
    assert hashes_equal(k.hash, k.hash)
    assert not hashes_equal(k.hash, "é" + k.hash[1:])


def test_looks_like_key_rejects_malformed_candidates() -> None:
    good = generate_key(PREFIX).key
    assert looks_like_key(good, prefixes=["other_", PREFIX])
    assert not looks_like_key(good[: MIN_KEY_LENGTH - 1], prefixes=[PREFIX])  # too short
    assert not looks_like_key("nm_abc", prefixes=[PREFIX])
    assert not looks_like_key(PREFIX + "a" * MAX_KEY_LENGTH, prefixes=[PREFIX])  # too long
    assert not looks_like_key(good, prefixes=["xx_"])  # wrong prefix
    assert not looks_like_key(good, prefixes=[])
    assert not looks_like_key(good[:-1] + "!", prefixes=[PREFIX])  # bad character
    assert not looks_like_key(good[:-1] + "é", prefixes=[PREFIX])  # non-ASCII
    assert not looks_like_key(good[:-1] + " ", prefixes=[PREFIX])
    assert not looks_like_key(PREFIX, prefixes=[PREFIX])


def test_better_auth_style_letters_only_key_is_accepted() -> None:
    assert looks_like_key("ba_" + "Ab" * 32, prefixes=["ba_"])


def test_permissions_round_trip_in_better_auth_column_shape() -> None:
    text = '{"news": ["read", "write", "run"], "channels": ["read"]}'
    perms = parse_permissions(text)
    assert perms == {"news": frozenset({"read", "write", "run"}), "channels": frozenset({"read"})}
    assert json.loads(serialize_permissions(perms)) == {
        "news": ["read", "run", "write"],
        "channels": ["read"],
    }
    assert parse_permissions(serialize_permissions(perms)) == perms


def test_empty_or_null_permissions_grant_nothing() -> None:
    for text in (None, "", "{}"):
        perms = parse_permissions(text)
        assert perms == {}
        assert not has_permission(perms, "news:read")


def test_has_permission_checks_resource_and_action_without_implication() -> None:
    perms = parse_permissions('{"channels": ["write"], "news": ["read"]}')
    assert has_permission(perms, "channels:write")
    assert not has_permission(perms, "channels:read")  # write does not imply read
    assert has_permission(perms, "news:read")
    assert not has_permission(perms, "news:run")
    assert not has_permission(perms, "stories:read")
    assert has_permission({"channels": ["write"]}, "channels:write")  # plain lists work too


def test_require_permission_names_the_missing_permission() -> None:
    with pytest.raises(PermissionDenied) as info:
        require_permission({"news": frozenset({"read"})}, "channels:write")
    assert info.value.permission == "channels:write"
    require_permission({"news": frozenset({"read"})}, "news:read")


@pytest.mark.parametrize("permission", ["channels", "channels:fly", "nope:read", "stories:run", ""])
def test_unknown_permission_names_are_rejected(permission: str) -> None:
    with pytest.raises(ValidationError) as info:
        split_permission(permission)
    assert info.value.field == "permission"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '["news"]',
        '"news:read"',
        '{"news": "read"}',
        '{"news": [1]}',
        '{"news": ["fly"]}',
        '{"files": ["read"]}',
        '{"channels": ["run"]}',
    ],
)
def test_malformed_permissions_raise_validation_error_on_permissions_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_permissions(text)
    assert info.value.field == "permissions"


def test_serialize_rejects_unknown_vocabulary() -> None:
    with pytest.raises(ValidationError):
        serialize_permissions({"files": ["read"]})


def test_vocabulary_is_small_and_run_is_news_only() -> None:
    assert set(RESOURCE_ACTIONS) == {
        "news", "schedules", "channels", "stories", "runs",
        "deliveries", "keys", "members", "invitations", "teams", "audit", "usage",
    }  # fmt: skip
    assert {r for r, acts in RESOURCE_ACTIONS.items() if "run" in acts} == {"news"}
    # the audit log and usage are only ever read (written by newsmon, limits by
    # operators); everything else is read and written
    assert RESOURCE_ACTIONS["audit"] == {"read"}
    assert RESOURCE_ACTIONS["usage"] == {"read"}
    writable = {r: acts for r, acts in RESOURCE_ACTIONS.items() if r not in {"audit", "usage"}}
    assert all({"read", "write"} <= acts for acts in writable.values())
