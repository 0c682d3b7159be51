"""What a key may do to other keys: the dominance rule, and the bounds of a key it mints.

A key *dominates* another when the other can do nothing the first cannot:

- permissions: every action the other holds, the first holds too;
- expiry, where the first expires: the other expires too, and no later;
- quota, where the first has one (``remaining`` not NULL): the other has one, with no more
  left right now; and its refill is none when the first has none, otherwise no larger
  (``refillAmount``, the burst) and no faster (``refillAmount / refillInterval``);
- rate limit, where the first has one: the other has one, no larger (``rateLimitMax``)
  and no faster (``rateLimitMax / rateLimitTimeWindow``).

A dimension the first key leaves unlimited is not compared. Quota compares what is left
*now*, because rotating a key hands the caller exactly what that key has left. Rates are
compared by cross-multiplying integers, never with floats.

A key acts (revoke, rotate) only on itself or on keys it dominates, and mints only keys it
dominates (:func:`bound_new_key`). A minted key's quota is *carved out* of its minter's
(:func:`carve_for`): its ``remaining`` is taken from the minter's, and its refill from
the minter's refill, so splitting a key never adds budget. Omitted limits of a new key:
expiry and rate limit are inherited from the minter (that costs the minter nothing);
``remaining`` is required when the minter has a quota (inheriting it would empty the
minter); an omitted refill means none.

Everything here is pure: no database, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from core.errors import Forbidden, ValidationError
from core.keys import parse_permissions

if TYPE_CHECKING:
    from core.db.models import ApiKey

#: One reason a key is not dominated: (field of the key's API form, why).
Gap = tuple[str, str]


@dataclass(frozen=True)
class KeyLimits:
    """A key's permissions and limits (None = unlimited), as the API names them."""

    permissions: Mapping[str, Collection[str]]
    expires_at: datetime | None = None
    remaining: int | None = None
    refill_amount: int | None = None
    refill_interval_ms: int | None = None
    rate_limit_max: int | None = None
    rate_limit_window_ms: int | None = None

    @classmethod
    def of(cls, row: ApiKey) -> KeyLimits:
        """The limits a stored key row is held to (a disabled rate limit is none)."""
        rate = row.rateLimitEnabled and row.rateLimitMax is not None
        return cls(
            permissions=parse_permissions(row.permissions),
            expires_at=row.expiresAt,
            remaining=row.remaining,
            refill_amount=row.refillAmount,
            refill_interval_ms=row.refillInterval,
            rate_limit_max=row.rateLimitMax if rate else None,
            rate_limit_window_ms=row.rateLimitTimeWindow if rate else None,
        )

    @property
    def refill(self) -> tuple[int, int] | None:
        """(amount, interval ms) when the quota really refills (a refill without a quota,
        or of nothing, does nothing: see core.tenancy.key_checks)."""
        if self.remaining is None or self.refill_amount is None or self.refill_amount <= 0:
            return None
        if self.refill_interval_ms is None:
            return None
        return self.refill_amount, self.refill_interval_ms

    @property
    def rate(self) -> tuple[int, int] | None:
        """(max requests, window ms) when rate limited."""
        if self.rate_limit_max is None or self.rate_limit_window_ms is None:
            return None
        return self.rate_limit_max, self.rate_limit_window_ms


def _budget_gap(mine: tuple[int, int], theirs: tuple[int, int]) -> str | None:
    """Why ``theirs`` (amount per ms) exceeds ``mine``: a larger burst or a faster pace."""
    (amount, per), (their_amount, their_per) = mine, theirs
    if their_amount > amount or their_amount * per > amount * their_per:
        return f"{their_amount} per {their_per} ms is more than this key's {amount} per {per} ms"
    return None


def _permission_gaps(holder: KeyLimits, other: KeyLimits) -> list[Gap]:
    missing = sorted(
        f"{resource}:{action}"
        for resource, actions in other.permissions.items()
        for action in actions
        if action not in holder.permissions.get(resource, ())
    )
    return [("permissions", f"{', '.join(missing)} not held by this key")] if missing else []


def _expiry_gaps(holder: KeyLimits, other: KeyLimits) -> list[Gap]:
    if holder.expires_at is None:
        return []
    mine = holder.expires_at.isoformat()
    if other.expires_at is None:
        return [("expiresAt", f"never expires; this key expires at {mine}")]
    if other.expires_at > holder.expires_at:
        return [("expiresAt", f"{other.expires_at.isoformat()} is after this key's {mine}")]
    return []


def _quota_gaps(holder: KeyLimits, other: KeyLimits) -> list[Gap]:
    if holder.remaining is None:
        return []
    if other.remaining is None:
        return [("remaining", f"unlimited; this key has {holder.remaining} requests left")]
    gaps: list[Gap] = []
    if other.remaining > holder.remaining:
        gaps.append(("remaining", f"{other.remaining} is more than this key's {holder.remaining}"))
    mine, theirs = holder.refill, other.refill
    if theirs is not None:
        if mine is None:
            gaps.append(("refillAmount", "refills; this key's quota does not"))
        elif (why := _budget_gap(mine, theirs)) is not None:
            gaps.append(("refillAmount", f"refill of {why}"))
    return gaps


def _rate_gaps(holder: KeyLimits, other: KeyLimits) -> list[Gap]:
    mine, theirs = holder.rate, other.rate
    if mine is None:
        return []
    if theirs is None:
        return [("rateLimitMax", "no rate limit; this key has one")]
    why = _budget_gap(mine, theirs)
    return [("rateLimitMax", f"rate limit of {why}")] if why else []


def dominance_gaps(holder: KeyLimits, other: KeyLimits) -> list[Gap]:
    """Every way ``other`` exceeds ``holder``; empty when ``holder`` dominates ``other``."""
    return [
        *_permission_gaps(holder, other),
        *_expiry_gaps(holder, other),
        *_quota_gaps(holder, other),
        *_rate_gaps(holder, other),
    ]


def refuse_gaps(what: str, gaps: list[Gap]) -> Forbidden:
    """The 403 for ``gaps``: ``what`` says what was refused, each gap names its field."""
    reasons = "; ".join(f"{field}: {why}" for field, why in gaps)
    return Forbidden(f"{what}: {reasons}", fields=gaps)


def check_dominates(holder: KeyLimits, other: KeyLimits, what: str) -> None:
    """Raise :class:`Forbidden` naming every gap unless ``holder`` dominates ``other``."""
    gaps = dominance_gaps(holder, other)
    if gaps:
        raise refuse_gaps(what, gaps)


def bound_new_key(minter: KeyLimits, wanted: KeyLimits) -> KeyLimits:
    """The key ``minter`` may create when asked for ``wanted``: omitted expiry and rate
    limit inherited, ``remaining`` required when the minter has a quota, and the result
    dominated by the minter (else :class:`Forbidden` naming each field)."""
    if minter.remaining is not None and wanted.remaining is None:
        raise ValidationError(
            f"required: this key has a quota ({minter.remaining} left) and a new key's "
            "quota is taken from it",
            field="remaining",
        )
    bounded = wanted
    if wanted.expires_at is None:
        bounded = replace(bounded, expires_at=minter.expires_at)
    if wanted.rate_limit_max is None and wanted.rate_limit_window_ms is None:
        bounded = replace(
            bounded,
            rate_limit_max=minter.rate_limit_max,
            rate_limit_window_ms=minter.rate_limit_window_ms,
        )
    check_dominates(minter, bounded, "a key cannot create a key with more than it has")
    return bounded


@dataclass(frozen=True)
class Carve:
    """What minting takes from the minter: ``remaining`` requests, and ``refill_share`` of
    its ``refillAmount`` (0: none), which must still hold ``refill_at_least`` then."""

    remaining: int
    refill_share: int = 0
    refill_at_least: int = 0


def carve_for(minter: KeyLimits, new: KeyLimits) -> Carve | None:
    """What minting ``new`` (already bounded) takes from ``minter``; None when the minter
    has no quota. The new key's refill pace is converted to the minter's interval and
    rounded up, so the two keys together never refill more than the minter alone did."""
    if minter.remaining is None:
        return None
    if new.remaining is None:  # bound_new_key refuses this; keep the invariant visible
        raise ValidationError("required when the minter has a quota", field="remaining")
    mine, theirs = minter.refill, new.refill
    if mine is None or theirs is None:
        return Carve(new.remaining)
    (_, per), (amount, their_per) = mine, theirs
    share = -(-amount * per // their_per)
    return Carve(new.remaining, share, max(share, amount))
