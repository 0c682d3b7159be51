"""A delivery's claim, lease renewal and fenced record: the statements that decide.

The queue only carries delivery ids; these conditional updates decide what happens. A
claim moves ``pending`` (due) -> ``sending`` with a lease and ``attempts + 1``; the
outcome is recorded only while that claim still holds (``attempts`` and ``leaseUntil``
are the fencing token), so a duplicate message after a success finds nothing to claim.

Per delivery the database sees, on PostgreSQL, two statements of their own (no
``BEGIN``/``COMMIT``): the claim, which also reads the channel, the digest, its search
and its stories (data-modifying CTE: claimed and loaded, or neither), and the record of
a sent delivery with its "sent" marks. SQLite runs the same steps as statements in one
transaction each. All are built once (see core/db/statements.py): building them, and
loading ORM rows, cost more Python per delivery than the round trips.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    Connection,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.db.base import UTCDateTime
from core.db.models import Channel, Delivery, Digest, DigestStory, News, Story
from core.db.statements import Shape, set_clause, shape_of, value_params
from core.delivery.model import (
    HEAD_COLUMNS,
    SEARCH_OF_DIGEST,
    DigestView,
    digest_stories,
    digest_view,
    read_stories,
    story_order,
)
from core.delivery.outcome import Outcome

#: Attempts a delivery gets before it is marked failed (a replay grants a new budget).
MAX_DELIVERY_ATTEMPTS = 8
#: How long a claim holds a delivery unless renewed; the worker's lease keeper renews it
#: while the send is in progress, so only a dead worker's delivery outlives it and is
#: offered again by the sweeper.
DELIVERY_LEASE = timedelta(seconds=30)
#: First retry delay; doubled per attempt up to ``BACKOFF_MAX``.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
#: Consecutive failures after which a channel is marked failing.
FAILING_AFTER = 3
#: Channel types whose receivers deduplicate a repeated send (``webhook-id``).
IDEMPOTENT_TYPES = frozenset({"webhook"})
#: ``news.lastSent`` is kept to this resolution (see ``_MARK_NEWS_SENT``).
LAST_SENT_RESOLUTION = timedelta(seconds=1)
#: Longest error text kept on a delivery or channel.
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    organization_id: str
    channel_id: str
    digest_id: str
    attempt: int
    lease_until: datetime
    resumed: bool  # claimed from an expired ``sending``: a worker died mid-send


@dataclass(frozen=True)
class ChannelTarget:
    """A channel as its delivery's claim read it (named as the ``Channel`` columns, so
    senders take either)."""

    id: str
    organizationId: str
    type: str
    config: dict[str, Any]
    isActive: bool
    status: str
    consecutiveFailures: int
    lastError: str | None


@dataclass(frozen=True)
class LoadedDelivery:
    """A claim with what its send needs: the channel and the digest."""

    claim: ClaimedDelivery
    channel: ChannelTarget
    digest: DigestView


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
_NOW = bindparam("now", type_=UTCDateTime())
_CHANNEL_FIELDS = (
    "id",
    "organizationId",
    "type",
    "config",
    "isActive",
    "status",
    "consecutiveFailures",
    "lastError",
)
_CHANNEL_COLUMNS = tuple(_CHANNELS.c[name].label(f"channel_{name}") for name in _CHANNEL_FIELDS)


def _claim_statement(condition: ColumnElement[bool]) -> Update:
    return (
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == bindparam("delivery_id"), condition)
        .values(
            state="sending",
            attempts=_DELIVERIES.c.attempts + 1,
            leaseUntil=bindparam("lease_until", type_=UTCDateTime()),
            updatedAt=_NOW,
        )
        .returning(
            _DELIVERIES.c.id,
            _DELIVERIES.c.organizationId,
            _DELIVERIES.c.channelId,
            _DELIVERIES.c.digestId,
            _DELIVERIES.c.attempts,
        )
    )


def _claim_and_load(claim: Update) -> Select[Any]:
    """PostgreSQL: ``claim`` and everything its send reads, as one statement: one row
    per story in order (one row with NULL story columns for a digest without any)."""
    claimed: CTE = claim.cte("claimed")
    stories = digest_stories(
        select(claimed.c.organizationId).correlate(None).scalar_subquery(),
        select(claimed.c.digestId).correlate(None).scalar_subquery(),
    ).subquery("digest_stories")
    joined = (
        claimed.join(
            _CHANNELS,
            and_(
                _CHANNELS.c.organizationId == claimed.c.organizationId,
                _CHANNELS.c.id == claimed.c.channelId,
            ),
        )
        .join(
            _DIGESTS,
            and_(
                _DIGESTS.c.organizationId == claimed.c.organizationId,
                _DIGESTS.c.id == claimed.c.digestId,
            ),
        )
        .join(_NEWS, SEARCH_OF_DIGEST)
        .outerjoin(stories, true())
    )
    return (
        select(
            claimed.c.attempts.label("delivery_attempts"),
            claimed.c.digestId.label("delivery_digest_id"),
            *_CHANNEL_COLUMNS,
            *HEAD_COLUMNS,
            stories,
        )
        .select_from(joined)
        .order_by(*story_order(stories))
    )


# Built once: the claim of a due pending delivery, and of an abandoned ``sending`` one
# (its lease expired: the worker died), alone and with what the send reads.
_CLAIM_DUE = _claim_statement(
    and_(
        _DELIVERIES.c.state == "pending",
        or_(_DELIVERIES.c.nextAttemptAt.is_(None), _DELIVERIES.c.nextAttemptAt <= _NOW),
    )
)
_CLAIM_ABANDONED = _claim_statement(
    and_(_DELIVERIES.c.state == "sending", _DELIVERIES.c.leaseUntil < _NOW)
)
_CLAIM_DUE_LOADED = _claim_and_load(_CLAIM_DUE)
_CLAIM_ABANDONED_LOADED = _claim_and_load(_CLAIM_ABANDONED)
# SQLite: what the send reads, after the claim, in its transaction.
_CHANNEL_AND_HEAD = (
    select(*_CHANNEL_COLUMNS, *HEAD_COLUMNS)
    .select_from(
        _CHANNELS.join(_DIGESTS, _DIGESTS.c.organizationId == _CHANNELS.c.organizationId).join(
            _NEWS, SEARCH_OF_DIGEST
        )
    )
    .where(
        _CHANNELS.c.organizationId == bindparam("organization_id"),
        _CHANNELS.c.id == bindparam("channel_id"),
        _DIGESTS.c.id == bindparam("digest_id"),
    )
)


def _claim_params(delivery_id: str, now: datetime, lease: timedelta) -> dict[str, Any]:
    return {"delivery_id": delivery_id, "now": now, "lease_until": now + lease}


def _claim_on(conn: Connection, params: dict[str, Any]) -> ClaimedDelivery | None:
    for statement, resumed in ((_CLAIM_DUE, False), (_CLAIM_ABANDONED, True)):
        row = conn.execute(statement, params).one_or_none()
        if row is not None:
            return ClaimedDelivery(
                row.id,
                row.organizationId,
                row.channelId,
                row.digestId,
                row.attempts,
                lease_until=params["lease_until"],
                resumed=resumed,
            )
    return None


def claim_delivery(
    session: Session, delivery_id: str, *, now: datetime, lease: timedelta = DELIVERY_LEASE
) -> ClaimedDelivery | None:
    """Take a due pending (or abandoned sending) delivery; None = nothing to do.

    The common case (pending and due) is one conditional UPDATE; only if it matches
    nothing is an abandoned ``sending`` row (lease expired) tried.
    """
    return _claim_on(session.connection(), _claim_params(delivery_id, now, lease))


def _channel_of(row: Any) -> ChannelTarget:
    return ChannelTarget(*(getattr(row, f"channel_{name}") for name in _CHANNEL_FIELDS))


def claim_and_load(
    conn: Connection, delivery_id: str, *, now: datetime, lease: timedelta = DELIVERY_LEASE
) -> LoadedDelivery | None:
    """:func:`claim_delivery` and read the channel and digest, committed on ``conn``
    (which must have no transaction open): one round trip on PostgreSQL."""
    params = _claim_params(delivery_id, now, lease)
    head: Any
    if conn.dialect.name != "postgresql":
        with conn.begin():
            claim = _claim_on(conn, params)
            if claim is None:
                return None
            keys = {
                "organization_id": claim.organization_id,
                "channel_id": claim.channel_id,
                "digest_id": claim.digest_id,
            }
            head = conn.execute(_CHANNEL_AND_HEAD, keys).one()
            stories = read_stories(conn, keys)
    else:
        conn.execution_options(isolation_level="AUTOCOMMIT")  # one statement, no BEGIN
        stories = conn.execute(_CLAIM_DUE_LOADED, params).all()
        resumed = not stories
        if resumed:
            stories = conn.execute(_CLAIM_ABANDONED_LOADED, params).all()
            if not stories:
                return None
        head = stories[0]
        claim = ClaimedDelivery(
            delivery_id,
            head.channel_organizationId,
            head.channel_id,
            head.delivery_digest_id,
            head.delivery_attempts,
            lease_until=params["lease_until"],
            resumed=resumed,
        )
    digest = digest_view(claim.organization_id, claim.digest_id, head, stories)
    return LoadedDelivery(claim, _channel_of(head), digest)


def renew_delivery_leases(
    session: Session,
    held: Sequence[tuple[str, int, datetime]],
    *,
    now: datetime,
    lease: timedelta,
) -> dict[str, datetime]:
    """Extend the leases of the deliveries still held by these claims (``(id, attempt,
    leaseUntil)``: the fencing token) to ``now + lease``, in one statement; returns the new
    ``leaseUntil`` of each renewed one (the holder's fence from now on). A row another
    transaction has locked is skipped, as for runs."""
    if not held:
        return {}
    until = now + lease
    still_held = (
        select(Delivery.id)
        .where(
            tuple_(Delivery.id, Delivery.attempts, Delivery.leaseUntil).in_(list(held)),
            Delivery.state == "sending",
        )
        .with_for_update(skip_locked=True)
    )
    renewed = session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(still_held), Delivery.state == "sending")
        .values(leaseUntil=until)
        .returning(Delivery.id),
        execution_options={"synchronize_session": False},
    )
    return dict.fromkeys(renewed, until)


_MARK_STORIES_DELIVERED = (
    update(_STORIES)
    .where(
        _STORIES.c.organizationId == bindparam("organization_id"),
        _STORIES.c.id.in_(
            select(_LINKS.c.storyId).where(_LINKS.c.digestId == bindparam("digest_id"))
        ),
    )
    .values(wasDelivered=True, updatedAt=_NOW)
)
# Only a lastSent older than the resolution is moved: many deliveries of one search
# finishing together then do not queue up on the search row's lock.
_MARK_NEWS_SENT = (
    update(_NEWS)
    .where(
        _NEWS.c.organizationId == bindparam("organization_id"),
        _NEWS.c.id
        == select(_DIGESTS.c.newsId)
        .where(_DIGESTS.c.id == bindparam("digest_id"))
        .scalar_subquery(),
        or_(
            _NEWS.c.lastSent.is_(None),
            _NEWS.c.lastSent < bindparam("sent_before", type_=UTCDateTime()),
        ),
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
    return (
        update(_DELIVERIES)
        .where(
            _DELIVERIES.c.id == bindparam("delivery_id"),
            _DELIVERIES.c.state == "sending",
            _DELIVERIES.c.attempts == bindparam("attempt"),
            _DELIVERIES.c.leaseUntil == bindparam("lease_until", type_=UTCDateTime()),
        )
        .values(**set_clause(_DELIVERIES, shape))
    )


@cache
def _record_sent_in_one(shape: Shape, recovered: bool) -> Select[Any]:
    """PostgreSQL: the fenced record of a sent delivery and its "sent" marks as one
    statement; the marks run only if the fence held (the count of fenced rows, 0 or 1)."""
    fenced = _fenced_record(shape).returning(_DELIVERIES.c.id).cte("fenced")
    held = exists(select(fenced.c.id))
    marks = [
        _MARK_STORIES_DELIVERED.where(held).cte("stories_delivered"),
        _MARK_NEWS_SENT.where(held).cte("search_sent"),
    ]
    if recovered:
        marks.append(_CHANNEL_RECOVERED.where(held).cte("channel_recovered"))
    return select(func.count()).select_from(fenced).add_cte(*marks)


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


def record_outcome(
    conn: Connection,
    claim: ClaimedDelivery,
    channel: ChannelTarget,
    outcome: Outcome,
    *,
    now: datetime,
    rng: random.Random | None = None,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> datetime | None:
    """Record one attempt's outcome under the claim's fence, committed on ``conn`` (no
    transaction open); returns when to retry. A sent delivery's stories get
    ``wasDelivered`` and its search ``lastSent``; the channel's health follows."""
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
        **value_params(values),
    }
    health = _channel_params(claim, channel, outcome)
    if outcome.kind == "sent" and conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="AUTOCOMMIT")  # one statement, no BEGIN
        statement = _record_sent_in_one(shape_of(values), health is not None)
        held = conn.execute(statement, {**params, **(health or {})}).scalar_one()
        return retry_at if held == 1 else None
    with conn.begin():
        if conn.execute(_fenced_record(shape_of(values)), params).rowcount != 1:
            return None  # taken over after our lease expired; the new holder records
        if outcome.kind == "sent":
            conn.execute(_MARK_STORIES_DELIVERED, params)
            conn.execute(_MARK_NEWS_SENT, params)
            if health is not None:
                conn.execute(_CHANNEL_RECOVERED, {**params, **health})
        else:
            conn.execute(_CHANNEL_FAILED, {**params, **health})
    return retry_at
