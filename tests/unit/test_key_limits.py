"""The dominance rule and the bounds of minted keys (core/tenancy/key_limits.py), as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import Forbidden, ValidationError
from core.tenancy.key_limits import (
    Carve,
    KeyLimits,
    bound_new_key,
    carve_for,
    dominance_gaps,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NEWS = {"news": frozenset({"read"})}
MINUTE = 60_000


def limits(permissions: dict[str, frozenset[str]] | None = None, **fields: Any) -> KeyLimits:
    return KeyLimits(permissions=NEWS if permissions is None else permissions, **fields)


#: (holder, other, fields in which other exceeds holder)
DOMINANCE = [
    # permissions
    (limits(), limits(), []),
    (limits({"news": frozenset({"read", "write"})}), limits(), []),
    (limits(), limits({"news": frozenset({"read", "write"})}), ["permissions"]),
    (limits(), limits({"keys": frozenset({"write"})}), ["permissions"]),
    (limits(), limits({}), []),
    # expiry: compared only where the holder expires
    (limits(), limits(expires_at=T0), []),
    (limits(expires_at=T0), limits(), ["expiresAt"]),
    (limits(expires_at=T0), limits(expires_at=T0), []),
    (limits(expires_at=T0), limits(expires_at=T0 - HOUR), []),
    (limits(expires_at=T0), limits(expires_at=T0 + HOUR), ["expiresAt"]),
    # quota: what is left now
    (limits(), limits(remaining=5), []),
    (limits(remaining=5), limits(), ["remaining"]),
    (limits(remaining=5), limits(remaining=5), []),
    (limits(remaining=5), limits(remaining=6), ["remaining"]),
    (limits(remaining=0), limits(remaining=0), []),
    # refill: none without one, else no larger burst and no faster pace
    (
        limits(remaining=5),
        limits(remaining=1, refill_amount=1, refill_interval_ms=MINUTE),
        ["refillAmount"],
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=1),
        [],
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=1, refill_amount=10, refill_interval_ms=MINUTE),
        [],
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=1, refill_amount=10, refill_interval_ms=MINUTE - 1),
        ["refillAmount"],
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=1, refill_amount=20, refill_interval_ms=2 * MINUTE),
        ["refillAmount"],
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=1, refill_amount=5, refill_interval_ms=MINUTE),
        [],
    ),
    # a refill without a quota, or of nothing, does nothing
    (limits(refill_amount=10, refill_interval_ms=MINUTE), limits(), []),
    (
        limits(remaining=5, refill_amount=0, refill_interval_ms=MINUTE),
        limits(remaining=1, refill_amount=1, refill_interval_ms=MINUTE),
        ["refillAmount"],
    ),
    # rate limit
    (limits(), limits(rate_limit_max=1, rate_limit_window_ms=MINUTE), []),
    (limits(rate_limit_max=10, rate_limit_window_ms=MINUTE), limits(), ["rateLimitMax"]),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        [],
    ),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=1, rate_limit_window_ms=1000),
        ["rateLimitMax"],
    ),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=20, rate_limit_window_ms=3 * MINUTE),
        ["rateLimitMax"],
    ),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=5, rate_limit_window_ms=MINUTE),
        [],
    ),
    # several at once, each named
    (
        limits(expires_at=T0, remaining=5, rate_limit_max=1, rate_limit_window_ms=MINUTE),
        limits({"keys": frozenset({"write"})}),
        ["permissions", "expiresAt", "remaining", "rateLimitMax"],
    ),
]


@pytest.mark.parametrize(("holder", "other", "fields"), DOMINANCE)
def test_dominance(holder: KeyLimits, other: KeyLimits, fields: list[str]) -> None:
    assert [field for field, _ in dominance_gaps(holder, other)] == fields


def test_a_gap_says_why() -> None:
    [(_, why)] = dominance_gaps(limits(expires_at=T0), limits())
    assert why == f"never expires; this key expires at {T0.isoformat()}"
    [(_, why)] = dominance_gaps(
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=1, rate_limit_window_ms=1000),
    )
    assert why == "rate limit of 1 per 1000 ms is more than this key's 10 per 60000 ms"


#: (minter, wanted, what the new key gets)
BOUNDED = [
    (limits(), limits(), limits()),
    (limits(expires_at=T0), limits(), limits(expires_at=T0)),
    (limits(expires_at=T0), limits(expires_at=T0 - HOUR), limits(expires_at=T0 - HOUR)),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(),
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
    ),
    (
        limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=2, rate_limit_window_ms=MINUTE),
        limits(rate_limit_max=2, rate_limit_window_ms=MINUTE),
    ),
    (limits(remaining=5), limits(remaining=2), limits(remaining=2)),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=2),
        limits(remaining=2),
    ),
]


@pytest.mark.parametrize(("minter", "wanted", "expected"), BOUNDED)
def test_bound_new_key(minter: KeyLimits, wanted: KeyLimits, expected: KeyLimits) -> None:
    assert bound_new_key(minter, wanted) == expected


def test_a_limited_minter_must_say_how_much_quota_to_give() -> None:
    with pytest.raises(ValidationError) as raised:
        bound_new_key(limits(remaining=5), limits())
    assert raised.value.field == "remaining"


@pytest.mark.parametrize(
    ("minter", "wanted", "field"),
    [
        (limits(expires_at=T0), limits(expires_at=T0 + HOUR), "expiresAt"),
        (limits(remaining=5), limits(remaining=6), "remaining"),
        (
            limits(rate_limit_max=10, rate_limit_window_ms=MINUTE),
            limits(rate_limit_max=10, rate_limit_window_ms=1000),
            "rateLimitMax",
        ),
        (limits(), limits({"keys": frozenset({"write"})}), "permissions"),
    ],
)
def test_bound_new_key_refuses_more(minter: KeyLimits, wanted: KeyLimits, field: str) -> None:
    with pytest.raises(Forbidden) as raised:
        bound_new_key(minter, wanted)
    assert [f for f, _ in raised.value.fields] == [field]


#: (minter, new key, what minting takes from the minter)
CARVES = [
    (limits(), limits(remaining=5), None),
    (limits(remaining=5), limits(remaining=2), Carve(2)),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=2),
        Carve(2),
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=2, refill_amount=4, refill_interval_ms=MINUTE),
        Carve(2, 4, 4),
    ),
    # another interval: the pace on the minter's interval, rounded up; the burst still holds
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=2, refill_amount=1, refill_interval_ms=60 * MINUTE),
        Carve(2, 1, 1),
    ),
    (
        limits(remaining=5, refill_amount=10, refill_interval_ms=MINUTE),
        limits(remaining=2, refill_amount=9, refill_interval_ms=2 * MINUTE),
        Carve(2, 5, 9),
    ),
    (
        limits(remaining=5, refill_amount=60, refill_interval_ms=60 * MINUTE),
        limits(remaining=0, refill_amount=1, refill_interval_ms=MINUTE),
        Carve(0, 60, 60),
    ),
]


@pytest.mark.parametrize(("minter", "new", "carve"), CARVES)
def test_carve_for(minter: KeyLimits, new: KeyLimits, carve: Carve | None) -> None:
    assert carve_for(minter, new) == carve
