"""Managing stored keys: find, revoke and rotate an organization's API keys."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy.orm import Session

from core.db.models import ApiKey
from core.db.scoped import get_owned
from core.errors import PermissionDenied
from core.keys import parse_permissions
from core.tenancy.api_keys import IssuedKey, create_api_key


def get_api_key(session: Session, organization_id: str, key_id: str) -> ApiKey:
    return get_owned(session, ApiKey, organization_id, key_id, "API key")


def check_grantable(
    granted: Mapping[str, Collection[str]], wanted: Mapping[str, Collection[str]]
) -> None:
    """A key may only hand out permissions it holds itself (no escalation)."""
    for resource, actions in wanted.items():
        for action in actions:
            if action not in granted.get(resource, ()):
                raise PermissionDenied(f"{resource}:{action}")


def revoke_api_key(session: Session, organization_id: str, key_id: str) -> None:
    """Delete the key: it stops working at once (its hash is gone)."""
    session.delete(get_api_key(session, organization_id, key_id))
    session.flush()


def rotate_api_key(session: Session, organization_id: str, key_id: str) -> IssuedKey:
    """Replace the key by a new one with the same name, permissions and limits."""
    old = get_api_key(session, organization_id, key_id)
    issued = create_api_key(
        session,
        organization_id,
        name=old.name or "rotated",
        permissions=parse_permissions(old.permissions),
        expires_at=old.expiresAt,
        remaining=old.remaining,
        refill_interval_ms=old.refillInterval,
        refill_amount=old.refillAmount,
        rate_limit_max=old.rateLimitMax if old.rateLimitEnabled else None,
        rate_limit_window_ms=old.rateLimitTimeWindow if old.rateLimitEnabled else None,
    )
    session.delete(old)
    session.flush()
    return issued
