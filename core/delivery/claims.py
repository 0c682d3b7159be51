"""A delivery's claim, lease renewal and fenced record: the statements that decide.

The queue only carries delivery ids; these conditional updates decide what happens. A
claim moves ``pending`` (due) -> ``sending`` with a lease and ``attempts + 1``; the
outcome is recorded only while that claim still holds (``attempts`` and ``leaseUntil``
are the fencing token), so a duplicate message after a success finds nothing to claim.

On PostgreSQL the claim is one statement of its own (no ``BEGIN``/``COMMIT``) that also
reads the channel, the digest, its search and its stories (a data-modifying CTE:
claimed and loaded, or neither); SQLite runs the claim and the reads in one
transaction. A batch's webhook deliveries may be claimed and loaded together, ahead of
their turns (:func:`claim_batch_and_load`), and so may the deliveries a worker's threads
claim at the same time (:mod:`core.delivery.claim_group`). The outcome is recorded by
core/delivery/record.py. Statements are built once (see core/db/statements.py):
building them, and loading ORM rows, cost more Python per delivery than the round
trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    CTE,
    Connection,
    FromClause,
    Select,
    String,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    exists,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.db.base import UTCDateTime
from core.db.driver import DriverStatement
from core.db.models import Channel, Delivery, Digest, News, Organization
from core.db.session import autocommitted
from core.delivery.model import (
    HEAD_COLUMNS,
    SEARCH_OF_DIGEST,
    DigestView,
    digest_stories,
    digest_view,
    read_stories,
    story_order,
)

#: How long a claim holds a delivery unless renewed; the worker's lease keeper renews it
#: while the send is in progress, so only a dead worker's delivery outlives it and is
#: offered again by the sweeper.
DELIVERY_LEASE = timedelta(seconds=30)
#: Channel types whose receivers deduplicate a repeated send (``webhook-id``).
IDEMPOTENT_TYPES = frozenset({"webhook"})


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    organization_id: str
    channel_id: str
    digest_id: str
    attempt: int
    lease_until: datetime
    resumed: bool  # claimed from an expired ``sending``: a worker died mid-send
    daily_limit: int | None = None  # the organization's maxDeliveriesPerDay
    day_taken: datetime | None = None  # the UTC day whose place this send took


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


_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_CHANNELS: Table = Channel.__table__  # type: ignore[assignment]
_DIGESTS: Table = Digest.__table__  # type: ignore[assignment]
_NEWS: Table = News.__table__  # type: ignore[assignment]
_ORGANIZATIONS: Table = Organization.__table__  # type: ignore[assignment]
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


#: The one delivery a claim names.
_NAMED = _DELIVERIES.c.id == bindparam("delivery_id")


def _claim_statement(condition: ColumnElement[bool], which: ColumnElement[bool] = _NAMED) -> Update:
    return (
        update(_DELIVERIES)
        .where(which, condition)
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
            # Read with the claim, so an organization without the limit pays nothing.
            select(_ORGANIZATIONS.c.maxDeliveriesPerDay)
            .where(_ORGANIZATIONS.c.id == _DELIVERIES.c.organizationId)
            .scalar_subquery()
            .label("daily_limit"),
        )
    )


def _claim_and_load(claim: Update) -> Select[Any]:
    """PostgreSQL: ``claim`` and everything its send reads, as one statement: one row
    per story in order (one row with NULL story columns for a digest without any)."""
    # Short SQL names keep the statement within psycopg's query cache (4,096 bytes):
    # a longer one is converted anew on every claim.
    claimed: CTE = claim.cte("claim")
    stories = digest_stories(
        select(claimed.c.organizationId).correlate(None).scalar_subquery(),
        select(claimed.c.digestId).correlate(None).scalar_subquery(),
    ).subquery("ds")
    return _loaded(claimed, stories).order_by(*story_order(stories))


def _loaded(claimed: CTE, stories: FromClause) -> Select[Any]:
    """The rows of the deliveries ``claimed``: each joined to its channel, digest and
    search, and to its ``stories`` (one row with NULL story columns if it has none)."""
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
    return select(
        claimed.c.id.label("delivery_id"),
        claimed.c.attempts.label("delivery_attempts"),
        claimed.c.digestId.label("delivery_digest_id"),
        claimed.c.daily_limit.label("delivery_daily_limit"),
        *_CHANNEL_COLUMNS,
        *HEAD_COLUMNS,
        stories,
    ).select_from(joined)


# Built once: the claim of a due pending delivery, and of an abandoned ``sending`` one
# (its lease expired: the worker died), alone and with what the send reads.
_DUE = and_(
    _DELIVERIES.c.state == "pending",
    or_(_DELIVERIES.c.nextAttemptAt.is_(None), _DELIVERIES.c.nextAttemptAt <= _NOW),
)
_CLAIM_DUE = _claim_statement(_DUE)
_CLAIM_ABANDONED = _claim_statement(
    and_(_DELIVERIES.c.state == "sending", _DELIVERIES.c.leaseUntil < _NOW)
)
_CLAIM_DUE_LOADED = DriverStatement(_claim_and_load(_CLAIM_DUE))
#: The fence of a claim (binds ``delivery_id``, ``attempt``, ``lease_until``): the
#: delivery is still ``sending`` under this claim's attempt and lease. Whatever a holder
#: writes after its send goes under it, so a holder whose lease was taken over writes
#: nothing.
HELD_BY_CLAIM = and_(
    _DELIVERIES.c.id == bindparam("delivery_id"),
    _DELIVERIES.c.state == "sending",
    _DELIVERIES.c.attempts == bindparam("attempt"),
    _DELIVERIES.c.leaseUntil == bindparam("lease_until", type_=UTCDateTime()),
)
_CLAIM_ABANDONED_LOADED = DriverStatement(_claim_and_load(_CLAIM_ABANDONED))


def _claim_batch_and_load(*, webhooks_only: bool) -> Select[Any]:
    """PostgreSQL: claim those of ``delivery_ids`` that are due (only webhook deliveries
    if ``webhooks_only``), and read what their sends need, as one statement: rows grouped
    by delivery, its stories in order. A row another transaction has locked is skipped
    (its own claim waits for it)."""
    due = (
        select(_DELIVERIES.c.id)
        .where(_DELIVERIES.c.id == any_(bindparam("delivery_ids", type_=ARRAY(String))))
        .where(_DUE)
        .order_by(_DELIVERIES.c.id)
        .with_for_update(of=_DELIVERIES, skip_locked=True)
    )
    if webhooks_only:
        due = due.where(
            exists().where(
                _CHANNELS.c.organizationId == _DELIVERIES.c.organizationId,
                _CHANNELS.c.id == _DELIVERIES.c.channelId,
                _CHANNELS.c.type == "webhook",
            )
        )
    claimed = _claim_statement(_DUE, _DELIVERIES.c.id.in_(due)).cte("claim")
    stories = digest_stories(claimed.c.organizationId, claimed.c.digestId).lateral("ds")
    return _loaded(claimed, stories).order_by(claimed.c.id, *story_order(stories))


_CLAIM_BATCH_LOADED = DriverStatement(_claim_batch_and_load(webhooks_only=True))
_CLAIM_DUE_BATCH_LOADED = DriverStatement(_claim_batch_and_load(webhooks_only=False))
#: A claim undone before its send began: due again as it was, no attempt spent.
_GIVE_BACK = (
    update(_DELIVERIES)
    .where(HELD_BY_CLAIM)
    .values(state="pending", attempts=_DELIVERIES.c.attempts - 1, leaseUntil=None, updatedAt=_NOW)
)
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
                daily_limit=row.daily_limit,
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


def _claim_of(head: Any, lease_until: datetime, *, resumed: bool) -> ClaimedDelivery:
    """The claim a loaded row (PostgreSQL's claim-and-load statements) tells of."""
    return ClaimedDelivery(
        head.delivery_id,
        head.channel_organizationId,
        head.channel_id,
        head.delivery_digest_id,
        head.delivery_attempts,
        lease_until=lease_until,
        resumed=resumed,
        daily_limit=head.delivery_daily_limit,
    )


def claim_and_load(
    conn: Connection, delivery_id: str, *, now: datetime, lease: timedelta = DELIVERY_LEASE
) -> LoadedDelivery | None:
    """:func:`claim_delivery` and read the channel and digest, committed on ``conn``
    (which must have no transaction open, and has none after): one round trip on
    PostgreSQL."""
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
        with autocommitted(conn):  # one statement, no BEGIN
            stories = _CLAIM_DUE_LOADED.rows(conn, params)
            resumed = not stories
            if resumed:
                stories = _CLAIM_ABANDONED_LOADED.rows(conn, params)
        if not stories:
            return None
        head = stories[0]
        claim = _claim_of(head, params["lease_until"], resumed=resumed)
    digest = digest_view(claim.organization_id, claim.digest_id, head, stories)
    return LoadedDelivery(claim, _channel_of(head), digest)


def claim_batch_and_load(
    conn: Connection,
    delivery_ids: Sequence[str],
    *,
    now: datetime,
    lease: timedelta = DELIVERY_LEASE,
    webhooks_only: bool = True,
) -> dict[str, LoadedDelivery]:
    """PostgreSQL: claim, in one autocommitted statement, those of ``delivery_ids`` that
    are due (webhook deliveries only, unless not ``webhooks_only``), and read what their
    sends need; returns them by id.

    Only webhooks are claimed ahead of their send: a worker dying before it reaches one
    leaves it ``sending`` until its lease expires, then it is sent as an abandoned claim,
    which only webhooks' receivers deduplicate. The others are claimed in their turn, or
    together when each is sent as soon as it is claimed (:mod:`core.delivery.claim_group`).
    """
    lease_until = now + lease
    params = {"delivery_ids": list(delivery_ids), "now": now, "lease_until": lease_until}
    statement = _CLAIM_BATCH_LOADED if webhooks_only else _CLAIM_DUE_BATCH_LOADED
    with autocommitted(conn):  # one statement, no BEGIN
        rows = statement.rows(conn, params)
    loaded: dict[str, LoadedDelivery] = {}
    for delivery_id, group in groupby(rows, key=attrgetter("delivery_id")):
        stories = list(group)
        head = stories[0]
        claim = _claim_of(head, lease_until, resumed=False)
        digest = digest_view(claim.organization_id, claim.digest_id, head, stories)
        loaded[delivery_id] = LoadedDelivery(claim, _channel_of(head), digest)
    return loaded


def give_back(conn: Connection, claims: Sequence[ClaimedDelivery], *, now: datetime) -> None:
    """Undo claims whose sends never began (a batch past its budget, or stopped): each
    is ``pending`` again, due as it was, with no attempt spent. A claim that no longer
    holds is left."""
    if claims:
        with autocommitted(conn):
            conn.execute(
                _GIVE_BACK,
                [
                    {
                        "delivery_id": claim.id,
                        "attempt": claim.attempt,
                        "lease_until": claim.lease_until,
                        "now": now,
                    }
                    for claim in claims
                ],
            )


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
