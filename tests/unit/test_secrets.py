"""Channel secrets at rest (core/secrets.py)."""

from __future__ import annotations

import base64

import pytest

from core.errors import ConfigError, NewsmonError, ValidationError
from core.secrets import (
    KEYS_SETTING,
    Keyring,
    SecretsError,
    channel_aad,
    generate_key_string,
    is_envelope,
    key_id,
    open_fields,
    parse_keys,
    seal_fields,
)

SECRET = "hooks-secret-Zx81QvLp"
AAD_A = channel_aad("org_A", "chan_1")
AAD_B = channel_aad("org_B", "chan_1")


@pytest.fixture
def old_key() -> str:
    return generate_key_string()


@pytest.fixture
def new_key() -> str:
    return generate_key_string()


def _flip_middle_char(text: str) -> str:
    middle = len(text) - 10  # inside the ciphertext, away from base64's padding bits
    return text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]


def test_generated_key_string_is_32_bytes_base64url_unpadded() -> None:
    text = generate_key_string()
    assert "=" not in text
    assert len(base64.urlsafe_b64decode(text + "=")) == 32
    assert generate_key_string() != text


def test_round_trip_and_envelope_format(old_key: str) -> None:
    ring = Keyring([old_key])
    envelope = ring.encrypt(SECRET, AAD_A)
    version, kid, nonce, _sealed = envelope.split(".")
    assert version == "v1"
    assert kid == ring.newest_kid == key_id(base64.urlsafe_b64decode(old_key + "="))
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 12
    assert "=" not in envelope
    assert SECRET not in envelope
    assert is_envelope(envelope)
    assert ring.decrypt(envelope, AAD_A) == SECRET


def test_same_secret_sealed_twice_differs_by_nonce(old_key: str) -> None:
    ring = Keyring([old_key])
    assert ring.encrypt(SECRET, AAD_A) != ring.encrypt(SECRET, AAD_A)


def test_ciphertext_copied_to_another_organization_fails(old_key: str) -> None:
    ring = Keyring([old_key])
    envelope = ring.encrypt(SECRET, AAD_A)
    with pytest.raises(SecretsError) as info:
        ring.decrypt(envelope, AAD_B)
    assert SECRET not in str(info.value)
    with pytest.raises(SecretsError):
        ring.decrypt(envelope, channel_aad("org_A", "chan_2"))


def test_tampered_ciphertext_fails(old_key: str) -> None:
    ring = Keyring([old_key])
    envelope = ring.encrypt(SECRET, AAD_A)
    with pytest.raises(SecretsError, match="authentication"):
        ring.decrypt(_flip_middle_char(envelope), AAD_A)
    version, kid, _nonce, sealed = envelope.split(".")
    other_nonce = base64.urlsafe_b64encode(bytes(12)).decode().rstrip("=")
    with pytest.raises(SecretsError):
        ring.decrypt(f"{version}.{kid}.{other_nonce}.{sealed}", AAD_A)


def test_non_canonical_base64_spelling_is_malformed(old_key: str) -> None:
    ring = Keyring([old_key])
    envelope = ring.encrypt("x", AAD_A)  # 17 sealed bytes: the last character has spare bits
    last = envelope[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = envelope[:-1] + alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(SecretsError, match="malformed"):
        ring.decrypt(respelled, AAD_A)


def test_wrong_key_fails_without_leaking_material(old_key: str, new_key: str) -> None:
    envelope = Keyring([old_key]).encrypt(SECRET, AAD_A)
    with pytest.raises(SecretsError, match="not configured") as info:
        Keyring([new_key]).decrypt(envelope, AAD_A)
    assert old_key not in str(info.value) and new_key not in str(info.value)


def test_envelope_without_kid_is_malformed(old_key: str, new_key: str) -> None:
    envelope = Keyring([old_key]).encrypt(SECRET, AAD_A)
    forged = envelope.replace(key_id(base64.urlsafe_b64decode(old_key + "=")), "", 1)
    with pytest.raises(SecretsError, match="malformed"):
        Keyring([new_key]).decrypt(forged, AAD_A)


@pytest.mark.parametrize(
    "envelope",
    ["", "plain-text", "v2.abc.AAAA.AAAA", "v1.kid.!!!.AAAA", "v1.kid.AAAA.AAAA", "v1..a.b.c"],
)
def test_malformed_envelopes_raise(old_key: str, envelope: str) -> None:
    ring = Keyring([old_key])
    with pytest.raises(SecretsError, match="malformed"):
        ring.decrypt(envelope, AAD_A)
    assert not is_envelope(envelope)


def test_rotation_overlap(old_key: str, new_key: str) -> None:
    before = Keyring([old_key])
    rows = {org: before.encrypt(f"{SECRET}-{org}", channel_aad(org, "c")) for org in "ABC"}

    during = Keyring([new_key, old_key])
    assert during.kids == (during.newest_kid, before.newest_kid)
    for org, envelope in rows.items():
        aad = channel_aad(org, "c")
        assert during.decrypt(envelope, aad) == f"{SECRET}-{org}"  # old rows still readable
        assert during.needs_rotation(envelope)
        rotated = during.rotate(envelope, aad)
        assert rotated.split(".")[1] == during.newest_kid
        assert not during.needs_rotation(rotated)
        assert during.rotate(rotated, aad) == rotated  # already current: unchanged
        rows[org] = rotated

    after = Keyring([new_key])  # old key dropped
    for org, envelope in rows.items():
        assert after.decrypt(envelope, channel_aad(org, "c")) == f"{SECRET}-{org}"


def test_rotate_refuses_a_row_bound_elsewhere(old_key: str, new_key: str) -> None:
    envelope = Keyring([old_key]).encrypt(SECRET, AAD_A)
    with pytest.raises(SecretsError):
        Keyring([new_key, old_key]).rotate(envelope, AAD_B)


def test_parse_keys_builds_keyring_newest_first(old_key: str, new_key: str) -> None:
    ring = parse_keys(f" {new_key} , {old_key}")
    assert ring.kids == Keyring([new_key]).kids + Keyring([old_key]).kids
    assert old_key not in repr(ring) and new_key not in repr(ring)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " , ",
        "KEY,,KEY2",
        "not-a-key",
        base64.urlsafe_b64encode(bytes(16)).decode().rstrip("="),  # AES-128 size
        base64.b64encode(bytes(range(32))).decode(),  # padded standard base64
        "KEY,KEY",  # the same key twice
    ],
)
def test_parse_keys_errors_name_the_setting_and_never_echo_keys(
    value: str, new_key: str, old_key: str
) -> None:
    value = value.replace("KEY2", old_key).replace("KEY", new_key)
    with pytest.raises(ConfigError) as info:
        parse_keys(value)
    assert info.value.setting == KEYS_SETTING
    assert KEYS_SETTING in str(info.value)
    for entry in filter(None, (e.strip() for e in value.split(","))):
        assert entry not in info.value.problem


def test_secrets_error_is_a_newsmon_error() -> None:
    assert issubclass(SecretsError, NewsmonError)


def test_seal_and_open_fields(old_key: str) -> None:
    ring = Keyring([old_key])
    config = {"url": "https://hooks.example.com/x", "token": SECRET, "password": None, "n": 3}
    sealed = seal_fields(config, {"token", "password", "missing"}, ring, AAD_A)
    assert config["token"] == SECRET  # input untouched
    assert sealed["url"] == config["url"] and sealed["n"] == 3 and sealed["password"] is None
    assert "missing" not in sealed
    assert SECRET not in repr(sealed)
    assert isinstance(sealed["token"], str) and is_envelope(sealed["token"])
    assert open_fields(sealed, {"token", "password"}, ring, AAD_A) == config
    with pytest.raises(SecretsError):
        open_fields(sealed, {"token"}, ring, AAD_B)


def test_seal_fields_rejects_non_string_secret(old_key: str) -> None:
    with pytest.raises(ValidationError) as info:
        seal_fields({"token": 12345}, {"token"}, Keyring([old_key]), AAD_A)
    assert info.value.field == "token"


def test_channel_aad_refuses_ambiguous_ids() -> None:
    assert channel_aad("o", "c") == b"o|c"
    with pytest.raises(ValidationError):
        channel_aad("o|x", "c")
