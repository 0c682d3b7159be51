"""A delivery attempt's outcome, recorded under its claim's fence.

``sent``: the digest's stories get ``wasDelivered``, the search ``lastSent``, a channel
that had failed is healthy again. A failure goes back to ``pending`` after a backoff
while attempts remain and a retry can help, else ``failed`` (or ``unknown``); it counts
on the channel (``failing``, ``broken``). On PostgreSQL a sent delivery's record and its
marks (and its count in the organization's usage) are one statement of its own
(data-modifying CTEs, run only if the fence held);
otherwise, and on SQLite, the statements share one transaction. Either way the
attempt's ``deliveryAttempts`` row (:mod:`core.delivery.attempts`) is written with the
record, and only if the fence held.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    Select,
    String,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    column,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from core.db.base import UTCDateTime
from core.db.driver import DriverStatement
from core.db.models import Channel, Delivery, DeliveryAttempt, Digest, DigestStory, News, Story
from core.db.session import autocommitted, transaction_on
from core.db.statements import Shape, set_clause, shape_of, value_params
from core.delivery import daily_limit
from core.delivery.attempts import ATTEMPT_COLUMNS, ATTEMPT_VALUES, INSERT_ATTEMPT, attempt_params
from core.delivery.claims import (
    HELD_BY_CLAIM,
    IDEMPOTENT_TYPES,
    ChannelTarget,
    ClaimedDelivery,
)
from core.delivery.outcome import MAX_RESPONSE_EXCERPT, Outcome
from core.ids import new_id
from core.usage.counters import add_usage, count_sent_deliveries, count_sent_delivery
from core.usage.months import month_of

#: Attempts a delivery gets before it is marked failed (a replay grants a new budget).
MAX_DELIVERY_ATTEMPTS = 8
#: First retry delay; doubled per attempt up to ``BACKOFF_MAX``.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
#: Consecutive failures after which a channel is marked failing.
FAILING_AFTER = 3
#: ``news.lastSent`` is kept to this resolution (see ``_MARK_NEWS_SENT``).
LAST_SENT_RESOLUTION = timedelta(seconds=1)
#: Longest error text kept on a delivery or channel.
MAX_ERROR_CHARS = 1000


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Delay after failed attempt ``attempt`` (1-based): equal jitter over 2^(n-1) x base."""
    ceiling: timedelta = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX)
    jitter: float = (rng or random).random()
    return ceiling / 2 + ceiling / 2 * jitter


_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_CHANNELS: Table = Channel.__table__  # type: ignore[assignment]
_DIGESTS: Table = Digest.__table__  # type: ignore[assignment]
_STORIES: Table = Story.__table__  # type: ignore[assignment]
_LINKS: Table = DigestStory.__table__  # type: ignore[assignment]
_NEWS: Table = News.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = DeliveryAttempt.__table__  # type: ignore[assignment]
_NOW = bindparam("now", type_=UTCDateTime())

# Stories already marked (the digest's other channels, a replay) are not written again:
# each rewrite is a new row version, with its indexes and WAL, for nothing.
_MARK_STORIES_DELIVERED = (
    update(_STORIES)
    .where(
        _STORIES.c.organizationId == bindparam("organization_id"),
        _STORIES.c.id.in_(
            select(_LINKS.c.storyId).where(_LINKS.c.digestId == bindparam("digest_id"))
        ),
        _STORIES.c.wasDelivered.is_(False),
    )
    .values(wasDelivered=True, updatedAt=_NOW)
)
# Only a lastSent older than the resolution is moved: many deliveries of one search
# finishing together then do not queue up on the search row's lock.
_SEARCH_SENT_BEFORE = or_(
    _NEWS.c.lastSent.is_(None),
    _NEWS.c.lastSent < bindparam("sent_before", type_=UTCDateTime()),
)
_MARK_NEWS_SENT = (
    update(_NEWS)
    .where(
        _NEWS.c.organizationId == bindparam("organization_id"),
        _NEWS.c.id
        == select(_DIGESTS.c.newsId)
        .where(_DIGESTS.c.id == bindparam("digest_id"))
        .scalar_subquery(),
        _SEARCH_SENT_BEFORE,
    )
    .values(lastSent=_NOW, updatedAt=_NOW)
)
# A channel that had failed is healthy again (a broken one stays broken until fixed).
_CHANNEL_RECOVERED = (
    update(_CHANNELS)
    .where(
        _CHANNELS.c.organizationId == bindparam("organization_id"),
        _CHANNELS.c.id == bindparam("channel_id"),
    )
    .values(
        consecutiveFailures=0,
        status=bindparam("channel_status"),
        lastError=None,
        updatedAt=_NOW,
    )
)
_CHANNEL_FAILED = (
    update(_CHANNELS)
    .where(
        _CHANNELS.c.organizationId == bindparam("organization_id"),
        _CHANNELS.c.id == bindparam("channel_id"),
    )
    .values(
        consecutiveFailures=bindparam("failures"),
        status=bindparam("channel_status"),
        lastError=bindparam("channel_error"),
        updatedAt=_NOW,
    )
)


@cache
def _fenced_record(shape: Shape) -> Update:
    return update(_DELIVERIES).where(HELD_BY_CLAIM).values(**set_clause(_DELIVERIES, shape))


@cache
def _record_sent_in_one(shape: Shape, recovered: bool) -> DriverStatement:
    """PostgreSQL: the fenced record of a sent delivery and its "sent" marks as one
    statement; the marks run only if the fence held (the count of fenced rows, 0 or 1)."""
    fenced = _fenced_record(shape).returning(_DELIVERIES.c.id).cte("fenced")
    held = exists(select(fenced.c.id))
    attempt = insert(_ATTEMPTS).from_select(
        list(ATTEMPT_VALUES), select(*ATTEMPT_VALUES.values()).where(held)
    )
    marks = [
        _MARK_STORIES_DELIVERED.where(held).cte("stories_delivered"),
        _MARK_NEWS_SENT.where(held).cte("search_sent"),
        attempt.cte("attempt_recorded"),
        count_sent_delivery(held).cte("usage_counted"),
    ]
    if recovered:
        marks.append(_CHANNEL_RECOVERED.where(held).cte("channel_recovered"))
    return DriverStatement(select(func.count()).select_from(fenced).add_cte(*marks))


@dataclass(frozen=True)
class SentRecord:
    """A sent delivery's record, as one of several (:func:`record_sent_together`)."""

    claim: ClaimedDelivery
    outcome: Outcome
    started_at: datetime
    duration_ms: int | None


#: The columns of the records :func:`record_sent_together` writes, one array each.
_SENT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", String()),
    ("attempt", Integer()),
    ("lease_until", DateTime(timezone=True)),
    ("status", Integer()),
    ("response", Text()),
    ("attempt_id", String()),
    ("attempt_response", Text()),
    ("started_at", DateTime(timezone=True)),
    ("duration_ms", Integer()),
)


def _record_sent_together() -> Select[Any]:
    """PostgreSQL: the fenced records of several sent deliveries and their "sent" marks
    as one statement, set-based (what :func:`_record_sent_in_one` does for one): the
    marks and counts go only to the deliveries whose fence held."""
    sent = (
        func.unnest(*(bindparam(f"sent_{name}", type_=ARRAY(kind)) for name, kind in _SENT_COLUMNS))
        .table_valued(*(column(name, kind) for name, kind in _SENT_COLUMNS))
        .render_derived(name="sent")
    )
    fenced = (
        update(_DELIVERIES)
        .where(
            # Also as an array of ids, so the plan finds them by key rather than joining
            # every ``sending`` row to the list.
            _DELIVERIES.c.id == any_(bindparam("sent_id", type_=ARRAY(String()))),
            _DELIVERIES.c.id == sent.c.id,
            _DELIVERIES.c.state == "sending",
            _DELIVERIES.c.attempts == sent.c.attempt,
            _DELIVERIES.c.leaseUntil == sent.c.lease_until,
        )
        .values(
            state="sent",
            sentAt=_NOW,
            nextAttemptAt=None,
            leaseUntil=None,
            updatedAt=_NOW,
            lastStatusCode=sent.c.status,
            response=sent.c.response,
            lastError=None,
            heldReason=None,
        )
        .returning(
            _DELIVERIES.c.id,
            _DELIVERIES.c.organizationId,
            _DELIVERIES.c.digestId,
            sent.c.attempt,
            sent.c.status,
            sent.c.attempt_id,
            sent.c.attempt_response,
            sent.c.started_at,
            sent.c.duration_ms,
        )
        .cte("fenced")
    )
    attempts = insert(_ATTEMPTS).from_select(
        [column for column, _ in ATTEMPT_COLUMNS],
        select(
            fenced.c.attempt_id,
            fenced.c.organizationId,
            fenced.c.id,
            fenced.c.attempt,
            literal("sent"),
            fenced.c.status,
            fenced.c.duration_ms,
            null(),
            fenced.c.attempt_response,
            fenced.c.started_at,
            _NOW,
            _NOW,
        ),
    )
    stories = select(fenced.c.organizationId, _LINKS.c.storyId).join_from(
        fenced, _LINKS, _LINKS.c.digestId == fenced.c.digestId
    )
    searches = select(fenced.c.organizationId, _DIGESTS.c.newsId).join_from(
        fenced,
        _DIGESTS,
        and_(
            _DIGESTS.c.organizationId == fenced.c.organizationId,
            _DIGESTS.c.id == fenced.c.digestId,
        ),
    )
    # Rows shared with other records (a digest's stories, sent to several channels; a
    # search) are locked first, in key order, so two such statements running at once
    # wait for each other instead of deadlocking.
    stories_locked = (
        select(_STORIES.c.id)
        .where(
            tuple_(_STORIES.c.organizationId, _STORIES.c.id).in_(stories),
            _STORIES.c.wasDelivered.is_(False),
        )
        .order_by(_STORIES.c.id)
        .with_for_update()
        .cte("stories_locked")
    )
    searches_locked = (
        select(_NEWS.c.id)
        .where(
            tuple_(_NEWS.c.organizationId, _NEWS.c.id).in_(searches),
            _SEARCH_SENT_BEFORE,
        )
        .order_by(_NEWS.c.id)
        .with_for_update()
        .cte("searches_locked")
    )
    marks = [
        update(_STORIES)
        .where(_STORIES.c.id.in_(select(stories_locked.c.id)))
        .values(wasDelivered=True, updatedAt=_NOW)
        .cte("stories_delivered"),
        update(_NEWS)
        .where(_NEWS.c.id.in_(select(searches_locked.c.id)))
        .values(lastSent=_NOW, updatedAt=_NOW)
        .cte("searches_sent"),
        attempts.cte("attempts_recorded"),
        count_sent_deliveries(select(fenced.c.organizationId)).cte("usage_counted"),
    ]
    return select(func.count()).select_from(fenced).add_cte(*marks)


_RECORD_SENT_TOGETHER = DriverStatement(_record_sent_together())


def record_sent_together(conn: Connection, records: Sequence[SentRecord], *, now: datetime) -> int:
    """PostgreSQL: record several sent deliveries (each under its claim's fence, with its
    attempt row, its stories' and search's marks and its count in its organization's
    usage) in one autocommitted statement on ``conn``; returns how many fences held.
    Only for records :func:`gatherable` allows."""
    rows = [
        (
            record.claim.id,
            record.claim.attempt,
            record.claim.lease_until,
            record.outcome.status,
            record.outcome.response,
            new_id(),
            record.outcome.response[:MAX_RESPONSE_EXCERPT] if record.outcome.response else None,
            record.started_at,
            record.duration_ms,
        )
        for record in records
    ]
    params: dict[str, Any] = {
        f"sent_{name}": list(values)
        for (name, _), values in zip(_SENT_COLUMNS, zip(*rows, strict=True), strict=True)
    }
    params.update(now=now, sent_before=now - LAST_SENT_RESOLUTION, month=month_of(now))
    with autocommitted(conn):  # one statement, no BEGIN
        held: int = _RECORD_SENT_TOGETHER.scalar(conn, params)
    return held


def _outcome_values(
    claim: ClaimedDelivery,
    channel: ChannelTarget,
    outcome: Outcome,
    *,
    now: datetime,
    rng: random.Random | None,
    max_attempts: int,
) -> tuple[dict[str, object], datetime | None]:
    """The delivery's new columns after this outcome, and when it is due again."""
    values: dict[str, object] = {
        "leaseUntil": None,
        "updatedAt": now,
        "lastStatusCode": outcome.status,
        "response": outcome.response,
        "lastError": outcome.error[:MAX_ERROR_CHARS] if outcome.error else None,
        "heldReason": None,
    }
    if outcome.kind == "sent":
        values.update(state="sent", sentAt=now, nextAttemptAt=None)
        return values, None
    retryable = outcome.kind == "failed" and not outcome.permanent
    retryable |= outcome.kind == "unknown" and channel.type in IDEMPOTENT_TYPES
    if retryable and claim.attempt < max_attempts:
        delay = backoff(claim.attempt, rng)
        if outcome.retry_after is not None:
            delay = max(delay, timedelta(seconds=outcome.retry_after))
        values.update(state="pending", nextAttemptAt=now + delay)
        return values, now + delay
    state = "unknown" if outcome.kind == "unknown" and not retryable else "failed"
    values.update(state=state, nextAttemptAt=None)
    return values, None


def _channel_params(claim: ClaimedDelivery, channel: ChannelTarget, outcome: Outcome) -> Any:
    """Parameters of the channel's health update after ``outcome`` (None: unchanged)."""
    keys = {"organization_id": claim.organization_id, "channel_id": channel.id}
    if outcome.kind == "sent":
        if not (channel.consecutiveFailures or channel.status == "failing" or channel.lastError):
            return None
        return {**keys, "channel_status": "broken" if channel.status == "broken" else "ok"}
    failures = channel.consecutiveFailures + 1
    status = channel.status
    if outcome.broken:
        status = "broken"
    elif failures >= FAILING_AFTER and status == "ok":
        status = "failing"
    error = (outcome.error or "")[:MAX_ERROR_CHARS]
    return {**keys, "failures": failures, "channel_status": status, "channel_error": error}


def gatherable(claim: ClaimedDelivery, channel: ChannelTarget, outcome: Outcome) -> bool:
    """Whether this record may be written with others' (:func:`record_sent_together`):
    a send that went out cleanly and leaves its channel's health as it is."""
    return (
        outcome.kind == "sent"
        and outcome.error is None
        and _channel_params(claim, channel, outcome) is None
    )


def record_outcome(
    conn: Connection,
    claim: ClaimedDelivery,
    channel: ChannelTarget,
    outcome: Outcome,
    *,
    now: datetime,
    rng: random.Random | None = None,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    started_at: datetime | None = None,
    duration_ms: int | None = None,
) -> datetime | None:
    """Record one attempt's outcome under the claim's fence, committed on ``conn`` (no
    transaction open), with its attempt row (``started_at``/``duration_ms``: the send's;
    None when nothing was sent); returns when to retry. A sent delivery's stories get
    ``wasDelivered`` and its search ``lastSent``; the channel's health follows. A stale
    holder (fence lost) records nothing."""
    values, retry_at = _outcome_values(
        claim, channel, outcome, now=now, rng=rng, max_attempts=max_attempts
    )
    params: dict[str, Any] = {
        "delivery_id": claim.id,
        "attempt": claim.attempt,
        "lease_until": claim.lease_until,
        "organization_id": claim.organization_id,
        "digest_id": claim.digest_id,
        "now": now,
        "sent_before": now - LAST_SENT_RESOLUTION,
        "month": month_of(now),
        **value_params(values),
        **attempt_params(
            organization_id=claim.organization_id,
            delivery_id=claim.id,
            attempt=claim.attempt,
            outcome=outcome,
            started_at=started_at or now,
            duration_ms=duration_ms,
            now=now,
        ),
    }
    health = _channel_params(claim, channel, outcome)
    if outcome.kind == "sent" and conn.dialect.name == "postgresql":
        statement = _record_sent_in_one(shape_of(values), health is not None)
        with autocommitted(conn):  # one statement, no BEGIN
            held = statement.scalar(conn, {**params, **(health or {})})
        return retry_at if held == 1 else None
    with transaction_on(conn):
        if conn.execute(_fenced_record(shape_of(values)), params).rowcount != 1:
            return None  # taken over after our lease expired; the new holder records
        conn.execute(INSERT_ATTEMPT, params)
        if outcome.kind == "sent":
            conn.execute(_MARK_STORIES_DELIVERED, params)
            conn.execute(_MARK_NEWS_SENT, params)
            if health is not None:
                conn.execute(_CHANNEL_RECOVERED, {**params, **health})
            add_usage(conn, claim.organization_id, now, deliveries_sent=1)  # last: shared row
        else:
            conn.execute(_CHANNEL_FAILED, {**params, **health})
            if claim.day_taken is not None:
                daily_limit.give_back(conn, claim.organization_id, claim.day_taken)
    return retry_at
