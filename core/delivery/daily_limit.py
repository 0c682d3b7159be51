"""An organization's ``maxDeliveriesPerDay``: digests past it wait for the next UTC day.

A delivery counts when it is about to be sent: the deliver actor takes one place in the
organization's window for the current UTC day (:func:`core.throttle.hit` on the bucket
``deliveries-per-day:<organizationId>``, one statement, exact under concurrency), and
gives it back when the attempt does not end ``sent`` (a failing channel does not use the
day up by retrying). A claim finding the day full is undone under its fence, in the
transaction that found the day full: the delivery goes back to ``pending`` without
spending an attempt, due at the next UTC midnight, with ``heldReason`` saying why. No
message waits a day in the queue: the sweeper enqueues it once due, the next day's
window counts it, and its ``heldReason`` is cleared when its outcome is recorded. Held
deliveries are never dropped; when more are held than the next day allows, the rest
wait another day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection

from core.db.base import UTCDateTime
from core.db.models import Delivery, ThrottleWindow
from core.delivery.claims import HELD_BY_CLAIM, ClaimedDelivery
from core.throttle import hit, window_start

#: One window per UTC day (windows are aligned to the epoch, so they start at midnight).
DAY = timedelta(days=1)
_DAY_S = int(DAY.total_seconds())

_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_WINDOWS: Table = ThrottleWindow.__table__  # type: ignore[assignment]

# Built once, as the delivery's other statements (core/db/statements.py).
_HOLD = (
    update(_DELIVERIES)
    .where(HELD_BY_CLAIM)
    .values(
        state="pending",
        attempts=_DELIVERIES.c.attempts - 1,
        leaseUntil=None,
        nextAttemptAt=bindparam("until", type_=UTCDateTime()),
        heldReason=bindparam("reason"),
        updatedAt=bindparam("now", type_=UTCDateTime()),
    )
)
_GIVE_BACK = (
    update(_WINDOWS)
    .where(
        _WINDOWS.c.bucket == bindparam("window_bucket"),
        _WINDOWS.c.windowStart == bindparam("window_start", type_=UTCDateTime()),
        _WINDOWS.c.hits > 0,
    )
    .values(hits=_WINDOWS.c.hits - 1)
)


def bucket(organization_id: str) -> str:
    return f"deliveries-per-day:{organization_id}"


def held_reason(limit: int, now: datetime) -> str:
    """The readable reason a held delivery carries."""
    day = window_start(now, _DAY_S)
    return (
        f"held: limit maxDeliveriesPerDay ({limit}) reached on {day:%Y-%m-%d} (UTC); "
        f"it is sent after {day + DAY:%Y-%m-%d %H:%M} UTC"
    )


def take_place(
    conn: Connection, organization_id: str, limit: int, now: datetime
) -> datetime | None:
    """Take one of today's ``limit`` places; returns the day's window start (to give the
    place back), or None when the day is full."""
    admission = hit(
        conn,
        bucket(organization_id),
        limit=limit,
        window_s=_DAY_S,
        now=now,
        organization_id=organization_id,
    )
    return window_start(now, _DAY_S) if admission.allowed else None


def give_back(conn: Connection, organization_id: str, day: datetime) -> None:
    """Return a place taken in the window of ``day`` (nothing if that window is over)."""
    conn.execute(_GIVE_BACK, {"window_bucket": bucket(organization_id), "window_start": day})


def hold(conn: Connection, claim: ClaimedDelivery, now: datetime) -> str:
    """Undo ``claim`` (under its fence): pending until the next UTC day, the attempt not
    spent; returns the reason stored on it."""
    reason = held_reason(claim.daily_limit or 0, now)
    until = window_start(now, _DAY_S) + DAY
    conn.execute(
        _HOLD,
        {
            "delivery_id": claim.id,
            "attempt": claim.attempt,
            "lease_until": claim.lease_until,
            "until": until,
            "reason": reason,
            "now": now,
        },
    )
    return reason
