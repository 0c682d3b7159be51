"""A delivery's life: claim, send, record; retries with backoff, replay and test sends.

As with runs, the queue only carries delivery ids and these conditional updates decide:
a claim moves ``pending`` (due) -> ``sending`` with a lease and ``attempts + 1``; the
outcome is recorded only while that claim still holds (``attempts`` and ``leaseUntil``
are the fencing token), so a duplicate message after a success finds nothing to claim
and sends nothing.

- ``sent``: the digest's stories get ``wasDelivered``, the search ``lastSent``, the
  channel's failure count resets, the organization's usage counts one delivery sent.
- ``failed`` (transient): back to ``pending`` at ``now + backoff`` (exponential from
  ``BACKOFF_BASE``, equal jitter, at least the target's ``Retry-After``), until
  ``MAX_DELIVERY_ATTEMPTS``; then, or when permanent, ``failed``.
- ``unknown`` (timed out mid-send, or a worker died while ``sending``): retried like a
  transient failure for webhooks, whose receivers deduplicate by ``webhook-id``; kept as
  ``unknown`` for the others (email, Slack, apprise, file) rather than risk a silent
  duplicate: visible and replayable.

An organization with ``maxDeliveriesPerDay`` has each send take a place of its UTC day
first; a claim finding the day full goes back to ``pending`` until the next day, with a
``heldReason`` (:mod:`core.delivery.daily_limit`).

Each failure counts on the channel: ``FAILING_AFTER`` in a row mark it ``failing`` (its
pending deliveries keep their place); 410 or a revoked Slack webhook mark it ``broken``,
after which its deliveries fail without an attempt until it is fixed and they are replayed.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Table, Update, and_, bindparam, or_, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from core.clock import utcnow
from core.db.base import UTCDateTime
from core.db.models import Channel, Delivery, Digest, DigestStory, News, Organization, Story
from core.db.session import unit_of_work
from core.db.statements import Shape, set_clause, shape_of, value_params
from core.delivery import channels as ch
from core.delivery import daily_limit
from core.delivery.digest_links import DigestLinks
from core.delivery.model import DigestView, load_digest, sample_digest
from core.delivery.outcome import Outcome
from core.delivery.presenting import present
from core.delivery.send_apprise import send_apprise
from core.delivery.send_email import SMTP_TIMEOUT_S, send_email
from core.delivery.send_file import send_file
from core.delivery.send_slack import send_slack
from core.delivery.send_webhook import send_webhook
from core.errors import NotFound, ValidationError
from core.fetch import GuardedClient, GuardPolicy, Resolver, deadline_scope, outbound_guard
from core.ids import new_id
from core.masking import LOG_REDACTOR
from core.secrets import Keyring, SecretsError
from core.usage.counters import add_usage

if TYPE_CHECKING:
    from core.scheduling.leases import LeaseKeeper

log = logging.getLogger(__name__)

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
#: A due pending delivery is re-enqueued by the sweeper only this late (its own message
#: is normally on its way).
SWEEP_GRACE = timedelta(seconds=30)
#: Deliveries the sweeper re-enqueues per pass.
SWEEP_BATCH_SIZE = 1000
#: Channel types whose receivers deduplicate a repeated send (``webhook-id``).
IDEMPOTENT_TYPES = frozenset({"webhook"})
#: ``news.lastSent`` is kept to this resolution (see :func:`_mark_sent`).
LAST_SENT_RESOLUTION = timedelta(seconds=1)
#: Longest error text kept on a delivery or channel.
MAX_ERROR_CHARS = 1000
#: Wall-clock budget of one send of any type, connect to last reply (well inside the
#: deliver actor's time limit; webhooks and Slack stop earlier, at their client policy's
#: deadline).
SEND_DEADLINE_S = 60.0
#: Budget of a channel test send, which holds a web worker while it runs.
TEST_SEND_DEADLINE_S = 5.0


@dataclass(frozen=True)
class SendContext:
    """What senders need besides the channel: keys, the guarded client, the policy.

    Parameters:
      keyring: opens the channel's sealed secrets.
      client: the guarded HTTP client (webhook, Slack).
      policy: address policy for SMTP and apprise targets (the client's own policy).
      resolver: DNS for SMTP/apprise checks (tests inject one).
      smtp_timeout_s / smtp_ssl_context: SMTP connection settings.
      file_root: the folder ``file`` channels write below (``None``: file channels off).
      links: signs digests' feedback and unsubscribe links (``None``: no public
        address, ``NEWSMON_PUBLIC_URL``, so digests carry no such links).
      slack_buttons: Slack digests offer feedback as buttons (a Slack app's
        interactivity endpoint is configured, ``NEWSMON_SLACK_SIGNING_SECRET``).
    """

    keyring: Keyring
    client: GuardedClient
    policy: GuardPolicy
    resolver: Resolver | None = None
    smtp_timeout_s: float = SMTP_TIMEOUT_S
    smtp_ssl_context: ssl.SSLContext | None = None
    file_root: Path | None = None
    links: DigestLinks | None = None
    slack_buttons: bool = False


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
class DeliverResult:
    """What a deliver call did: ``None`` outcome = nothing to claim, or ``held`` (the
    reason: the organization's day is full; the sweeper enqueues it when due);
    ``retry_at`` = when the row is due again (the caller enqueues a delayed message)."""

    outcome: Outcome | None
    retry_at: datetime | None = None
    held: str | None = None


def backoff(attempt: int, rng: random.Random | None = None) -> timedelta:
    """Delay after failed attempt ``attempt`` (1-based): equal jitter over 2^(n-1) x base."""
    ceiling: timedelta = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX)
    jitter: float = (rng or random).random()
    return ceiling / 2 + ceiling / 2 * jitter


_DELIVERIES: Table = Delivery.__table__  # type: ignore[assignment]
_STORIES: Table = Story.__table__  # type: ignore[assignment]
_NEWS: Table = News.__table__  # type: ignore[assignment]
_NOW = bindparam("now", type_=UTCDateTime())


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
            # Read with the claim, so an organization without the limit pays nothing.
            select(Organization.maxDeliveriesPerDay)
            .where(Organization.id == _DELIVERIES.c.organizationId)
            .scalar_subquery()
            .label("daily_limit"),
        )
    )


# Built once (see core/db/statements.py): claim, fenced record and "sent" marks are short
# statements whose construction per delivery cost more Python than their round trips.
_CLAIM_DUE = _claim_statement(
    and_(
        _DELIVERIES.c.state == "pending",
        or_(_DELIVERIES.c.nextAttemptAt.is_(None), _DELIVERIES.c.nextAttemptAt <= _NOW),
    )
)
_CLAIM_ABANDONED = _claim_statement(
    and_(_DELIVERIES.c.state == "sending", _DELIVERIES.c.leaseUntil < _NOW)
)


def claim_delivery(
    session: Session, delivery_id: str, *, now: datetime, lease: timedelta = DELIVERY_LEASE
) -> ClaimedDelivery | None:
    """Take a due pending (or abandoned sending) delivery; None = nothing to do.

    The common case (pending and due) is one conditional UPDATE; only if it matches
    nothing is an abandoned ``sending`` row (lease expired) tried.
    """
    until = now + lease
    params = {"delivery_id": delivery_id, "now": now, "lease_until": until}
    for statement, resumed in ((_CLAIM_DUE, False), (_CLAIM_ABANDONED, True)):
        row = session.connection().execute(statement, params).one_or_none()
        if row is not None:
            return ClaimedDelivery(
                row.id,
                row.organizationId,
                row.channelId,
                row.digestId,
                row.attempts,
                lease_until=until,
                resumed=resumed,
                daily_limit=row.daily_limit,
            )
    return None


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


def delivery_states(session: Session, delivery_ids: Sequence[str]) -> dict[str, str]:
    """The state of each of these deliveries that exists (an operator's view: any tenant)."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(Delivery.id, Delivery.state).where(Delivery.id.in_(list(delivery_ids)))
    )
    return {delivery_id: state for delivery_id, state in rows}


def _channel_failed(session: Session, channel: Channel, outcome: Outcome, now: datetime) -> None:
    failures = channel.consecutiveFailures + 1
    status = channel.status
    if outcome.broken:
        status = "broken"
    elif failures >= FAILING_AFTER and status == "ok":
        status = "failing"
    session.execute(
        update(Channel)
        .where(Channel.organizationId == channel.organizationId, Channel.id == channel.id)
        .values(
            consecutiveFailures=failures,
            status=status,
            lastError=(outcome.error or "")[:MAX_ERROR_CHARS],
            updatedAt=now,
        )
    )


_MARK_STORIES_DELIVERED = (
    update(_STORIES)
    .where(
        _STORIES.c.organizationId == bindparam("organization_id"),
        _STORIES.c.id.in_(
            select(DigestStory.storyId).where(DigestStory.digestId == bindparam("digest_id"))
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
        == select(Digest.newsId).where(Digest.id == bindparam("digest_id")).scalar_subquery(),
        or_(
            _NEWS.c.lastSent.is_(None),
            _NEWS.c.lastSent < bindparam("sent_before", type_=UTCDateTime()),
        ),
    )
    .values(lastSent=_NOW)
)


def _mark_sent(session: Session, claim: ClaimedDelivery, channel: Channel, now: datetime) -> None:
    org = claim.organization_id
    params = {
        "organization_id": org,
        "digest_id": claim.digest_id,
        "now": now,
        "sent_before": now - LAST_SENT_RESOLUTION,
    }
    conn = session.connection()
    conn.execute(_MARK_STORIES_DELIVERED, params)
    conn.execute(_MARK_NEWS_SENT, params)
    if channel.consecutiveFailures or channel.status == "failing" or channel.lastError:
        session.execute(
            update(Channel)
            .where(Channel.organizationId == org, Channel.id == channel.id)
            .values(
                consecutiveFailures=0,
                status="ok" if channel.status != "broken" else "broken",
                lastError=None,
                updatedAt=now,
            )
        )
    add_usage(conn, org, now, deliveries_sent=1)  # last: the usage row is shared


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


def record_outcome(
    session: Session,
    claim: ClaimedDelivery,
    channel: Channel,
    outcome: Outcome,
    *,
    now: datetime,
    rng: random.Random | None = None,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
) -> datetime | None:
    """Record one attempt's outcome under the claim's fence; returns when to retry."""
    values: dict[str, object] = {
        "leaseUntil": None,
        "updatedAt": now,
        "lastStatusCode": outcome.status,
        "response": outcome.response,
        "lastError": outcome.error[:MAX_ERROR_CHARS] if outcome.error else None,
        "heldReason": None,
    }
    retry_at: datetime | None = None
    if outcome.kind == "sent":
        values.update(state="sent", sentAt=now, nextAttemptAt=None)
    else:
        retryable = outcome.kind == "failed" and not outcome.permanent
        retryable |= outcome.kind == "unknown" and channel.type in IDEMPOTENT_TYPES
        if retryable and claim.attempt < max_attempts:
            delay = backoff(claim.attempt, rng)
            if outcome.retry_after is not None:
                delay = max(delay, timedelta(seconds=outcome.retry_after))
            retry_at = now + delay
            values.update(state="pending", nextAttemptAt=retry_at)
        else:
            state = "unknown" if outcome.kind == "unknown" and not retryable else "failed"
            values.update(state=state, nextAttemptAt=None)
    fenced = session.connection().execute(
        _fenced_record(shape_of(values)),
        {
            "delivery_id": claim.id,
            "attempt": claim.attempt,
            "lease_until": claim.lease_until,
            **value_params(values),
        },
    )
    if fenced.rowcount != 1:
        return None  # taken over after our lease expired; the new holder records
    if outcome.kind == "sent":
        _mark_sent(session, claim, channel, now)
    else:
        _channel_failed(session, channel, outcome, now)
        if claim.day_taken is not None:
            daily_limit.give_back(session.connection(), claim.organization_id, claim.day_taken)
    return retry_at


def send_to_channel(
    channel: Channel,
    digest: DigestView,
    *,
    delivery_id: str,
    ctx: SendContext,
    now: datetime,
    deadline_s: float = SEND_DEADLINE_S,
) -> Outcome:
    """Open the channel's config and send ``digest`` once with its type's sender, within
    ``deadline_s`` and under the outbound guard: a connection the address policy refuses,
    whichever library made it, fails the send for good with the policy's reason. Neither
    the outcome's texts nor library log records of the send hold the channel's secrets."""
    try:
        config = ch.open_config(
            channel.type, channel.config, ctx.keyring, channel.organizationId, channel.id
        )
    except (SecretsError, ValidationError) as exc:
        return Outcome.failed(f"channel config unusable: {exc}", permanent=True)
    secrets = ch.config_secrets(channel.type, config)
    with (
        LOG_REDACTOR.hiding(secrets),
        outbound_guard(ctx.policy) as guard,
        deadline_scope(time.monotonic() + deadline_s),
    ):
        outcome = _send(config, channel, digest, delivery_id=delivery_id, ctx=ctx, now=now)
    if guard.refused and outcome.kind != "sent":
        # The guard's own words: an address and the policy's reason, never a secret.
        return Outcome.failed(guard.refused, permanent=True)
    return outcome.redacted(secrets)


def _send(
    config: ch.ChannelConfig,
    channel: Channel,
    digest: DigestView,
    *,
    delivery_id: str,
    ctx: SendContext,
    now: datetime,
) -> Outcome:
    if isinstance(config, ch.WebhookConfig):
        return send_webhook(config, digest, delivery_id=delivery_id, client=ctx.client, now=now)
    show = functools.partial(
        present, digest, now=now, zone=config.timezone, links=ctx.links, channel_id=channel.id
    )
    if isinstance(config, ch.SlackConfig):
        return send_slack(config, show, client=ctx.client, now=now, buttons=ctx.slack_buttons)
    if isinstance(config, ch.EmailConfig):
        return send_email(
            config,
            show,
            date=digest.created_at,
            policy=ctx.policy,
            per_recipient=ctx.links is not None,
            resolver=ctx.resolver,
            timeout_s=ctx.smtp_timeout_s,
            ssl_context=ctx.smtp_ssl_context,
        )
    if isinstance(config, ch.AppriseConfig):
        return send_apprise(config, show, policy=ctx.policy, resolver=ctx.resolver)
    return send_file(
        config, digest, show, root=ctx.file_root, organization_id=channel.organizationId
    )


def send_or_fail(
    channel: Channel,
    digest: DigestView,
    *,
    delivery_id: str,
    ctx: SendContext,
    now: datetime,
    deadline_s: float = SEND_DEADLINE_S,
) -> Outcome:
    """:func:`send_to_channel`, with any exception a sender did not map itself (a message
    that cannot be built, a defect) as a permanent failure naming it, its traceback
    logged: the delivery is then recorded ``failed``, never left ``sending`` by a
    crashed worker."""
    try:
        return send_to_channel(
            channel, digest, delivery_id=delivery_id, ctx=ctx, now=now, deadline_s=deadline_s
        )
    except Exception as exc:
        log.exception("delivery %s to channel %s could not be sent", delivery_id, channel.id)
        return Outcome.failed(f"could not be sent: {type(exc).__name__}: {exc}", permanent=True)


def deliver(
    engine: Engine,
    delivery_id: str,
    ctx: SendContext,
    *,
    clock: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    lease: timedelta = DELIVERY_LEASE,
    keeper: LeaseKeeper | None = None,
) -> DeliverResult:
    """Claim, send and record one delivery (the ``deliver`` actor's whole body).

    ``keeper`` renews the claim's lease while the send is in progress (a slow receiver
    then keeps its delivery); without one the lease must outlast the send.
    """
    with unit_of_work(engine) as session:
        now = clock()
        claim = claim_delivery(session, delivery_id, now=now, lease=lease)
        if claim is None:
            return DeliverResult(None)
        channel = session.scalars(
            select(Channel).where(
                Channel.organizationId == claim.organization_id, Channel.id == claim.channel_id
            )
        ).one()
        session.expunge(channel)
        if claim.daily_limit is not None and not claim.resumed and _sendable(channel):
            day = daily_limit.take_place(
                session.connection(), claim.organization_id, claim.daily_limit, now
            )
            if day is None:
                reason = daily_limit.hold(session.connection(), claim.id, claim.daily_limit, now)
                return DeliverResult(None, held=reason)
            claim = replace(claim, day_taken=day)
        digest = load_digest(session, claim.organization_id, claim.digest_id)
    if keeper is not None:
        keeper.hold_delivery(claim.id, claim.attempt, claim.lease_until)
    try:
        if claim.resumed and channel.type not in IDEMPOTENT_TYPES:
            outcome = Outcome.unknown("worker lost while sending; it may have been sent")
        elif not _sendable(channel):
            outcome = Outcome.failed(
                f"channel is {channel.status if channel.isActive else 'inactive'}",
                permanent=True,
            )
        else:
            outcome = send_or_fail(channel, digest, delivery_id=claim.id, ctx=ctx, now=clock())
    finally:
        if keeper is not None:
            # Renewals moved the fence: record under the lease as it stands now.
            claim = replace(claim, lease_until=keeper.release_delivery(claim.id))
    with unit_of_work(engine) as session:
        retry_at = record_outcome(session, claim, channel, outcome, now=clock(), rng=rng)
    return DeliverResult(outcome, retry_at)


def _sendable(channel: Channel) -> bool:
    """Whether a send is tried at all (a broken or inactive channel fails without one)."""
    return channel.isActive and channel.status != "broken"


def replay_delivery(
    session: Session, organization_id: str, delivery_id: str, *, now: datetime
) -> None:
    """Put a failed or unknown delivery back to pending with a new attempt budget; it
    keeps its id, so a webhook receiver sees the same ``webhook-id``."""
    done = session.execute(
        update(Delivery)
        .where(
            Delivery.organizationId == organization_id,
            Delivery.id == delivery_id,
            Delivery.state.in_(("failed", "unknown")),
        )
        .values(state="pending", attempts=0, nextAttemptAt=now, leaseUntil=None, updatedAt=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"no failed or unknown delivery {delivery_id}")


def deliveries_to_enqueue(
    session: Session,
    *,
    now: datetime,
    grace: timedelta = SWEEP_GRACE,
    limit: int = SWEEP_BATCH_SIZE,
) -> list[str]:
    """Deliveries the queue may have lost: pending and due for a while, or sending with
    an expired lease (worker died). Enqueueing one twice is harmless: claims decide."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                or_(
                    and_(Delivery.state == "pending", Delivery.nextAttemptAt <= now - grace),
                    and_(Delivery.state == "pending", Delivery.nextAttemptAt.is_(None)),
                    and_(Delivery.state == "sending", Delivery.leaseUntil < now),
                )
            )
            .order_by(Delivery.nextAttemptAt)
            .limit(limit)
        )
    )


def send_test_digest(
    session: Session, organization_id: str, channel_id: str, ctx: SendContext, *, now: datetime
) -> Outcome:
    """Send a sample digest to one channel now and return the exact outcome (nothing
    recorded: the channel's health and deliveries are untouched). The whole send, of any
    channel type, ends within ``TEST_SEND_DEADLINE_S``: it holds a web worker."""
    channel = session.scalar(
        select(Channel).where(Channel.organizationId == organization_id, Channel.id == channel_id)
    )
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    digest = sample_digest(now, organization_id)
    return send_or_fail(
        channel,
        digest,
        delivery_id=f"test_{new_id()}",
        ctx=ctx,
        now=now,
        deadline_s=TEST_SEND_DEADLINE_S,
    )
