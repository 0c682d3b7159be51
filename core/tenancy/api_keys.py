"""Issuing organization API keys and operator keys: plaintext returned once, hash stored."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.db.models import ApiKey, OperatorKey
from core.errors import ValidationError
from core.keys import generate_key, serialize_permissions, validate_permissions

#: Prefix of organization API keys (shown in listings, checked before any query).
API_KEY_PREFIX = "nm_"
#: Prefix of operator keys, so the two kinds are never confused.
OPERATOR_KEY_PREFIX = "nmop_"
#: Longest key name accepted.
MAX_KEY_NAME_LENGTH = 255


@dataclass(frozen=True)
class IssuedKey:
    """A stored key row's id and the plaintext key, which exists nowhere else."""

    id: str
    key: str
    start: str


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME_LENGTH:
        raise ValidationError(f"must be 1 to {MAX_KEY_NAME_LENGTH} characters", field="name")
    return name


def create_api_key(
    session: Session,
    organization_id: str,
    *,
    name: str,
    permissions: Mapping[str, Collection[str]],
    expires_at: datetime | None = None,
    remaining: int | None = None,
    refill_interval_ms: int | None = None,
    refill_amount: int | None = None,
    rate_limit_max: int | None = None,
    rate_limit_window_ms: int | None = None,
) -> IssuedKey:
    """Store a new organization key (hash only) and return its plaintext once."""
    perms = validate_permissions({k: list(v) for k, v in permissions.items()})
    if remaining is not None and remaining < 0:
        raise ValidationError("must be zero or more", field="remaining")
    if (refill_interval_ms is None) != (refill_amount is None):
        raise ValidationError("refillInterval and refillAmount go together", field="refill")
    if (rate_limit_max is None) != (rate_limit_window_ms is None):
        raise ValidationError("rateLimitMax and rateLimitTimeWindow go together", field="rateLimit")
    generated = generate_key(API_KEY_PREFIX)
    row = ApiKey(
        organizationId=organization_id,
        name=_check_name(name),
        start=generated.start,
        prefix=generated.prefix,
        key=generated.hash,
        permissions=serialize_permissions(perms),
        expiresAt=expires_at,
        remaining=remaining,
        refillInterval=refill_interval_ms,
        refillAmount=refill_amount,
        rateLimitEnabled=rate_limit_max is not None,
        rateLimitMax=rate_limit_max,
        rateLimitTimeWindow=rate_limit_window_ms,
    )
    session.add(row)
    session.flush()
    return IssuedKey(id=row.id, key=generated.key, start=generated.start)


def create_operator_key(
    session: Session, *, name: str, expires_at: datetime | None = None
) -> IssuedKey:
    """Store a new operator key (hash only) and return its plaintext once."""
    generated = generate_key(OPERATOR_KEY_PREFIX)
    row = OperatorKey(
        name=_check_name(name),
        start=generated.start,
        prefix=generated.prefix,
        key=generated.hash,
        expiresAt=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedKey(id=row.id, key=generated.key, start=generated.start)
