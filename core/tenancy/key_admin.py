"""Managing stored keys: find, mint, revoke and rotate an organization's API keys.

A tenant key acts only on itself or on keys it dominates, and mints only keys it
dominates, carving their quota out of its own (:mod:`core.tenancy.key_limits`). Operators
(``caller_key_id=None``: the CLI and operator routes) are not bound.
"""

from __future__ import annotations

from sqlalchemy import case, delete, update
from sqlalchemy.orm import Session

from core.db.models import ApiKey
from core.db.scoped import get_owned
from core.errors import NotFound
from core.tenancy.api_keys import IssuedKey, create_api_key
from core.tenancy.key_limits import (
    Carve,
    KeyLimits,
    bound_new_key,
    carve_for,
    check_dominates,
    refuse_gaps,
)


def get_api_key(session: Session, organization_id: str, key_id: str) -> ApiKey:
    return get_owned(session, ApiKey, organization_id, key_id, "API key")


def _acted_on(
    session: Session, organization_id: str, key_id: str, caller_key_id: str | None, verb: str
) -> ApiKey:
    """The target key, once the caller may ``verb`` it: itself, or a key it dominates."""
    target = get_api_key(session, organization_id, key_id)
    if caller_key_id is not None and caller_key_id != target.id:
        caller = get_api_key(session, organization_id, caller_key_id)
        check_dominates(
            KeyLimits.of(caller),
            KeyLimits.of(target),
            f"this key cannot {verb} a key with more than it has",
        )
    return target


def _delete(session: Session, organization_id: str, key_id: str) -> None:
    # Conditional, so a concurrent revoke or rotation of the same key makes this one a 404
    # (and its transaction, with any replacement key, rolls back).
    gone = session.execute(
        delete(ApiKey).where(ApiKey.organizationId == organization_id, ApiKey.id == key_id)
    )
    if gone.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("no such API key")


def revoke_api_key(
    session: Session, organization_id: str, key_id: str, *, caller_key_id: str | None
) -> None:
    """Delete the key: it stops working at once (its hash is gone)."""
    _acted_on(session, organization_id, key_id, caller_key_id, "revoke")
    _delete(session, organization_id, key_id)


def rotate_api_key(
    session: Session, organization_id: str, key_id: str, *, caller_key_id: str | None
) -> IssuedKey:
    """Replace the key by a new one with the same name, permissions, limits and usage: the
    quota left, the rate-limit window and the refill clock carry over, so rotating never
    resets a limit."""
    old = _acted_on(session, organization_id, key_id, caller_key_id, "rotate")
    issued = create_with_limits(session, organization_id, old.name or "rotated", KeyLimits.of(old))
    new = get_api_key(session, organization_id, issued.id)
    new.enabled = old.enabled
    new.requestCount = old.requestCount
    new.lastRequest = old.lastRequest
    if old.refillInterval is not None:  # the refill clock runs from lastRefillAt or createdAt
        new.lastRefillAt = old.lastRefillAt or old.createdAt
    new.metadata_ = old.metadata_
    session.flush()
    _delete(session, organization_id, key_id)
    return issued


def create_with_limits(
    session: Session, organization_id: str, name: str, limits: KeyLimits
) -> IssuedKey:
    """Store a key with exactly ``limits`` (unbound: the caller decided them)."""
    return create_api_key(
        session,
        organization_id,
        name=name,
        permissions=limits.permissions,
        expires_at=limits.expires_at,
        remaining=limits.remaining,
        refill_interval_ms=limits.refill_interval_ms,
        refill_amount=limits.refill_amount,
        rate_limit_max=limits.rate_limit_max,
        rate_limit_window_ms=limits.rate_limit_window_ms,
    )


def _take(session: Session, organization_id: str, minter_id: str, carve: Carve) -> None:
    """Take ``carve`` from the minter in one conditional UPDATE (refused when what is left
    no longer covers it: a concurrent request spent it first)."""
    conditions = [
        ApiKey.organizationId == organization_id,
        ApiKey.id == minter_id,
        ApiKey.remaining >= carve.remaining,
    ]
    values: dict[str, object] = {"remaining": ApiKey.remaining - carve.remaining}
    if carve.refill_share:
        conditions.append(ApiKey.refillAmount >= carve.refill_at_least)
        gives_all = ApiKey.refillAmount == carve.refill_share
        # Giving away the whole refill ends it (a refill of 0 would reset remaining to 0).
        values["refillAmount"] = case(
            (gives_all, None), else_=ApiKey.refillAmount - carve.refill_share
        )
        values["refillInterval"] = case((gives_all, None), else_=ApiKey.refillInterval)
    taken = session.execute(
        update(ApiKey)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise refuse_gaps(
            "a key cannot create a key with more than it has",
            [("remaining", "this key's quota left no longer covers it")],
        )


def mint_api_key(
    session: Session, organization_id: str, minter_key_id: str, *, name: str, wanted: KeyLimits
) -> IssuedKey:
    """Create a key for a tenant key: bounded by the minter (:func:`bound_new_key`), its
    quota carved out of the minter's in the same transaction."""
    minter = KeyLimits.of(get_api_key(session, organization_id, minter_key_id))
    bounded = bound_new_key(minter, wanted)
    issued = create_with_limits(session, organization_id, name, bounded)
    carve = carve_for(minter, bounded)
    if carve is not None:
        _take(session, organization_id, minter_key_id, carve)
    return issued
