"""API key material and permissions, compatible with Better Auth's api-key plugin.

A key is ``prefix + 64 random [A-Za-z0-9]``; only its hash is stored (SHA-256 of the UTF-8
key, base64url without padding: Better Auth's ``defaultKeyHasher``), so keys made by a
Better Auth front end verify here and ours verify there. ``start`` (the first 6 characters,
Better Auth's default ``startingCharactersConfig``) is kept for display.

Permissions use Better Auth's ``permissions`` text column: a JSON object mapping a resource
to its list of actions, e.g. ``{"news": ["read", "run"], "channels": ["read"]}``. Actions
are independent: ``write`` does not imply ``read``, as in Better Auth.

Everything here is pure: no database, no settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from core.errors import PermissionDenied, ValidationError

#: Characters of the random part (Better Auth's generator draws letters; we add digits).
KEY_ALPHABET = string.ascii_letters + string.digits
#: Length of the random part; Better Auth's ``defaultKeyLength``.
KEY_RANDOM_LENGTH = 64
#: Characters of the key shown for recognition; Better Auth's default ``charactersLength``.
KEY_START_LENGTH = 6
#: Shortest key accepted: Better Auth rejects keys shorter than ``defaultKeyLength``.
MIN_KEY_LENGTH = KEY_RANDOM_LENGTH
#: Longest key accepted, so a huge header is refused before it is hashed.
MAX_KEY_LENGTH = 256
#: Longest prefix; Better Auth's default ``maximumPrefixLength``.
MAX_PREFIX_LENGTH = 32

_PREFIX_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PREFIX_LENGTH}}}")
_RANDOM_PART_RE = re.compile(r"[A-Za-z0-9]+")

#: Resources a key can be granted actions on.
RESOURCES = (
    "news",
    "schedules",
    "channels",
    "stories",
    "runs",
    "deliveries",
    "keys",
    "members",
    "invitations",
    "teams",
    "usage",
)
#: The audit log (``GET /audit-log``): ``audit:read`` only.
AUDIT_RESOURCE = "audit"
#: Read objects of the resource.
ACTION_READ = "read"
#: Create, update and delete objects of the resource.
ACTION_WRITE = "write"
#: Start a monitoring run now (``news`` only).
ACTION_RUN = "run"
#: The actions each resource accepts.
RESOURCE_ACTIONS: Mapping[str, frozenset[str]] = {
    **{resource: frozenset({ACTION_READ, ACTION_WRITE}) for resource in RESOURCES},
    "news": frozenset({ACTION_READ, ACTION_WRITE, ACTION_RUN}),
    # The audit log is written by every mutation, never by a client: read only. A key
    # made before this permission existed lacks it (no key reads who did what unless
    # granted; an operator, or a key holding it, grants it).
    AUDIT_RESOURCE: frozenset({ACTION_READ}),
    # Usage is counted by newsmon and limits are set by operators: nothing to write.
    "usage": frozenset({ACTION_READ}),
}

#: Parsed permissions: resource -> granted actions.
Permissions: TypeAlias = dict[str, frozenset[str]]


@dataclass(frozen=True)
class GeneratedKey:
    """A freshly generated key; ``key`` is the plaintext, shown once and never stored."""

    key: str = field(repr=False)
    start: str
    prefix: str
    hash: str


def hash_key(plaintext: str) -> str:
    """Return Better Auth's stored form of a key: base64url(SHA-256(utf-8)) without ``=``."""
    digest = hashlib.sha256(plaintext.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def hashes_equal(a: str, b: str) -> bool:
    """Compare two key hashes in constant time (non-ASCII input simply compares unequal)."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_key(plaintext: str, stored_hash: str) -> bool:
    """Say whether ``plaintext`` hashes to ``stored_hash``, in constant time."""
    return hashes_equal(hash_key(plaintext), stored_hash)


def generate_key(prefix: str) -> GeneratedKey:
    """Generate a key ``prefix + 64 random [A-Za-z0-9]`` from :mod:`secrets`."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValidationError(
            f"must be 1-{MAX_PREFIX_LENGTH} characters of [A-Za-z0-9_-]", field="prefix"
        )
    random_part = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_LENGTH))
    key = prefix + random_part
    return GeneratedKey(key=key, start=key[:KEY_START_LENGTH], prefix=prefix, hash=hash_key(key))


def looks_like_key(candidate: str, *, prefixes: Collection[str]) -> bool:
    """Cheap syntactic check run before any database query.

    True when ``candidate`` is ``MIN_KEY_LENGTH``-``MAX_KEY_LENGTH`` characters long, starts
    with one of ``prefixes`` and the rest is ``[A-Za-z0-9]``.
    """
    if not MIN_KEY_LENGTH <= len(candidate) <= MAX_KEY_LENGTH or not candidate.isascii():
        return False
    return any(
        candidate.startswith(prefix) and _RANDOM_PART_RE.fullmatch(candidate[len(prefix) :])
        for prefix in prefixes
    )


def split_permission(permission: str) -> tuple[str, str]:
    """Split ``"channels:write"`` into ``("channels", "write")``, checking the vocabulary."""
    resource, sep, action = permission.partition(":")
    if not sep or action not in RESOURCE_ACTIONS.get(resource, frozenset()):
        raise ValidationError(f"unknown permission {permission!r}", field="permission")
    return resource, action


def validate_permissions(value: object) -> Permissions:
    """Check a decoded permissions object and return it as resource -> frozenset of actions."""
    if not isinstance(value, dict):
        raise ValidationError("must be an object of resource -> list of actions", "permissions")
    parsed: Permissions = {}
    for resource, actions in value.items():
        allowed = RESOURCE_ACTIONS.get(resource)
        if allowed is None:
            raise ValidationError(f"unknown resource {resource!r}", field="permissions")
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ValidationError(f"{resource} must be a list of action names", "permissions")
        unknown = sorted(set(actions) - allowed)
        if unknown:
            raise ValidationError(f"unknown action(s) for {resource}: {unknown}", "permissions")
        parsed[resource] = frozenset(actions)
    return parsed


def parse_permissions(text: str | None) -> Permissions:
    """Parse Better Auth's ``permissions`` column; ``None`` or ``""`` means no permissions."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationError("is not valid JSON", field="permissions") from None
    return validate_permissions(value)


def serialize_permissions(perms: Mapping[str, Collection[str]]) -> str:
    """Serialize permissions for the ``permissions`` column (validated, stable order)."""
    checked = validate_permissions({resource: list(acts) for resource, acts in perms.items()})
    ordered = {r: sorted(checked[r]) for r in RESOURCE_ACTIONS if checked.get(r)}
    return json.dumps(ordered, separators=(",", ":"))


def has_permission(perms: Mapping[str, Collection[str]], permission: str) -> bool:
    """Say whether ``perms`` grant ``permission`` (``"resource:action"``)."""
    resource, action = split_permission(permission)
    return action in perms.get(resource, ())


def require_permission(perms: Mapping[str, Collection[str]], permission: str) -> None:
    """Raise :class:`PermissionDenied` naming ``permission`` unless ``perms`` grant it."""
    if not has_permission(perms, permission):
        raise PermissionDenied(permission)
