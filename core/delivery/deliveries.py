"""A delivery's life: claim, send, record; retries with backoff, and test sends
(replay: :mod:`core.delivery.replay`; attempt history: :mod:`core.delivery.attempts`).

As with runs, the queue only carries delivery ids and conditional updates decide
(``core/delivery/claims.py``): a claim moves ``pending`` (due) -> ``sending`` with a
lease and ``attempts + 1``; the outcome is recorded only while that claim still holds
(``attempts`` and ``leaseUntil`` are the fencing token), so a duplicate message after a
success finds nothing to claim and sends nothing.

Outcomes (recorded by ``core/delivery/record.py``):

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
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.models import Channel, Delivery
from core.db.outage import OUTAGE_ERRORS
from core.db.session import transaction_on
from core.delivery import channels as ch
from core.delivery import daily_limit
from core.delivery.claim_group import ClaimGroup
from core.delivery.claims import (
    DELIVERY_LEASE,
    IDEMPOTENT_TYPES,
    ChannelTarget,
    LoadedDelivery,
    claim_and_load,
    claim_batch_and_load,
    give_back,
)
from core.delivery.digest_links import DigestLinks
from core.delivery.model import DigestView, sample_digest
from core.delivery.outcome import Outcome
from core.delivery.presenting import present
from core.delivery.record import record_outcome
from core.delivery.record_group import RecordGroup
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

if TYPE_CHECKING:
    from core.scheduling.leases import LeaseKeeper

log = logging.getLogger(__name__)

#: A due pending delivery is re-enqueued by the sweeper only this late (its own message
#: is normally on its way).
SWEEP_GRACE = timedelta(seconds=30)
#: Deliveries the sweeper re-enqueues per pass.
SWEEP_BATCH_SIZE = 1000
#: Wall-clock budget of one send of any type, connect to last reply (well inside the
#: deliver actor's time limit; webhooks and Slack stop earlier, at their client policy's
#: deadline).
SEND_DEADLINE_S = 60.0
#: Opened channel configs a send context keeps (see ``SendContext.opened``).
MAX_OPENED_CONFIGS = 4096
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
    #: Configs opened before, by channel and sealed config, so a changed config is
    #: opened anew (opening and listing its secrets was ~5% of a delivery's CPU). Held
    #: beside the keyring that opens them anyway; cleared past ``MAX_OPENED_CONFIGS``.
    opened: dict[tuple[str, str, str], tuple[ch.ChannelConfig, tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def open_channel(
        self, channel: Channel | ChannelTarget
    ) -> tuple[ch.ChannelConfig, tuple[str, ...]]:
        """The channel's config in clear and its secrets (for redaction); raises
        ``SecretsError`` or ``ValidationError`` if it cannot be opened."""
        key = (channel.type, channel.id, json.dumps(channel.config, sort_keys=True))
        found = self.opened.get(key)
        if found is None:
            config = ch.open_config(
                channel.type, channel.config, self.keyring, channel.organizationId, channel.id
            )
            found = (config, tuple(ch.config_secrets(channel.type, config)))
            if len(self.opened) >= MAX_OPENED_CONFIGS:
                self.opened.clear()
            self.opened[key] = found
        return found


@dataclass(frozen=True)
class DeliverResult:
    """What a deliver call did: ``None`` outcome = nothing to claim, or ``held`` (the
    reason: the organization's day is full; the sweeper enqueues it when due);
    ``retry_at`` = when the row is due again (the caller enqueues a delayed message)."""

    outcome: Outcome | None
    retry_at: datetime | None = None
    held: str | None = None


def delivery_states(session: Session, delivery_ids: Sequence[str]) -> dict[str, str]:
    """The state of each of these deliveries that exists (an operator's view: any tenant)."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(Delivery.id, Delivery.state).where(Delivery.id.in_(list(delivery_ids)))
    )
    return {delivery_id: state for delivery_id, state in rows}


def send_to_channel(
    channel: Channel | ChannelTarget,
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
        config, secrets = ctx.open_channel(channel)
    except (SecretsError, ValidationError) as exc:
        return Outcome.failed(f"channel config unusable: {exc}", permanent=True)
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
    channel: Channel | ChannelTarget,
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
    channel: Channel | ChannelTarget,
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
    """Claim, send and record one delivery: a batch of one (:func:`deliver_in_turn`).

    ``keeper`` renews the claim's lease while the send is in progress (a slow receiver
    then keeps its delivery); without one the lease must outlast the send.
    """
    [(_, result)] = deliver_in_turn(
        engine,
        [delivery_id],
        ctx,
        budget=timedelta(0),
        clock=clock,
        rng=rng,
        lease=lease,
        keeper=keeper,
    )
    return result


@contextmanager
def _connection_for_deliveries(engine: Engine) -> Iterator[Connection]:
    """One pooled connection for claims and records, with no transaction open on it while
    a send is in progress (a second checkout per delivery would cost another pool round,
    and a ping where the pool pings). On PostgreSQL it stays in autocommit: a claim and a
    sent record are one statement each, and switching per statement cost ~5% of a
    delivery's CPU."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # The pool sets it back when the connection returns.
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def deliver_in_turn(
    engine: Engine,
    delivery_ids: Sequence[str],
    ctx: SendContext,
    *,
    budget: timedelta,
    clock: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    lease: timedelta = DELIVERY_LEASE,
    keeper: LeaseKeeper | None = None,
    claims: ClaimGroup | None = None,
    records: RecordGroup | None = None,
) -> Generator[tuple[str, DeliverResult]]:
    """Claim, send and record each of ``delivery_ids`` in turn (the ``deliver`` actor's
    whole body: one delivery, or a batch of a backlog), yielding each result as it is
    recorded. One pooled connection serves the batch. On PostgreSQL a batch's webhook
    deliveries are claimed together first (:func:`claim_batch_and_load`; their leases
    renewed by ``keeper`` until their turn; none without a keeper), the others in their
    turn (with ``claims``' group: :mod:`core.delivery.claim_group`; records with
    ``records``': :mod:`core.delivery.record_group`). None is started
    once ``budget`` has passed since the batch began: claims not reached are given back,
    due as they were (the caller re-enqueues what was not yielded)."""
    began = time.monotonic()
    with _connection_for_deliveries(engine) as conn:
        ahead: dict[str, LoadedDelivery] = {}
        if keeper is not None:
            ahead = _claim_ahead(conn, delivery_ids, now=clock(), lease=lease, keeper=keeper)
        try:
            for index, delivery_id in enumerate(delivery_ids):
                if index and time.monotonic() - began >= budget.total_seconds():
                    return
                _reconnect_if_lost(conn)
                yield (
                    delivery_id,
                    _deliver_on(
                        conn,
                        engine,
                        delivery_id,
                        ahead.pop(delivery_id, None) if isinstance(delivery_id, str) else None,
                        ctx=ctx,
                        clock=clock,
                        rng=rng,
                        lease=lease,
                        keeper=keeper,
                        claims=claims,
                        records=records,
                    ),
                )
        finally:
            if ahead and keeper is not None:
                _give_back(conn, list(ahead.values()), keeper, now=clock())


def _claim_ahead(
    conn: Connection,
    delivery_ids: Sequence[str],
    *,
    now: datetime,
    lease: timedelta,
    keeper: LeaseKeeper,
) -> dict[str, LoadedDelivery]:
    """A batch's webhook deliveries claimed together (PostgreSQL), held by ``keeper``
    until their turns (without one, a claim could expire while it waits). A member that
    is not an id (a hand-made or corrupted message) is left to its turn, where it fails
    alone; so is the whole batch if the database refuses it for any reason but an
    outage."""
    ids = [i for i in delivery_ids if isinstance(i, str)]
    if len(ids) < 2 or conn.dialect.name != "postgresql":
        return {}
    try:
        ahead = claim_batch_and_load(conn, ids, now=now, lease=lease)
    except OUTAGE_ERRORS:
        raise  # the actor's retry
    except DBAPIError:
        log.warning("batch claim refused; its deliveries are claimed in turn", exc_info=True)
        return {}
    for claim in (loaded.claim for loaded in ahead.values()):
        keeper.hold_delivery(claim.id, claim.attempt, claim.lease_until)
    return ahead


def _reconnect_if_lost(conn: Connection) -> None:
    """After a delivery whose connection was lost (its outcome recorded on a new one):
    end what the lost one left, and put the new one the next statement connects in
    autocommit as well."""
    if conn.invalidated:
        conn.rollback()
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")


def _give_back(
    conn: Connection,
    loaded: list[LoadedDelivery],
    keeper: LeaseKeeper,
    *,
    now: datetime,
) -> None:
    """Give back a batch's claims it did not reach. Should that fail too (the database
    gone), they are left to their leases: then sent as abandoned claims, which only
    webhooks are, and their receivers deduplicate."""
    # Their fences as the keeper's renewals left them.
    claims = [
        replace(item.claim, lease_until=keeper.release_delivery(item.claim.id)) for item in loaded
    ]
    try:
        _reconnect_if_lost(conn)
        give_back(conn, claims, now=now)
    except DBAPIError:
        log.warning("%d claimed deliveries left to their leases", len(claims), exc_info=True)


def _deliver_on(
    conn: Connection,
    engine: Engine,
    delivery_id: str,
    ahead: LoadedDelivery | None,
    *,
    ctx: SendContext,
    clock: Callable[[], datetime],
    rng: random.Random | None,
    lease: timedelta,
    keeper: LeaseKeeper | None,
    claims: ClaimGroup | None = None,
    records: RecordGroup | None = None,
) -> DeliverResult:
    """One delivery: claimed here (with ``claims``' group if given), or ``ahead`` with
    its batch (then held by ``keeper`` until now: its current lease is its fence from
    here on)."""
    claim_one = claims.claim if claims is not None else claim_and_load
    loaded = ahead or claim_one(conn, delivery_id, now=clock(), lease=lease)
    if loaded is None:
        return DeliverResult(None)
    claim, channel = loaded.claim, loaded.channel
    if ahead is not None and keeper is not None:
        claim = replace(claim, lease_until=keeper.release_delivery(claim.id))
    if claim.daily_limit is not None and not claim.resumed and _sendable(channel):
        now = clock()
        with transaction_on(conn):
            day = daily_limit.take_place(conn, claim.organization_id, claim.daily_limit, now)
            if day is None:
                return DeliverResult(None, held=daily_limit.hold(conn, claim, now))
        claim = replace(claim, day_taken=day)
    if keeper is not None:
        keeper.hold_delivery(claim.id, claim.attempt, claim.lease_until)
    started_at = clock()
    duration_ms: int | None = None
    try:
        if claim.resumed and channel.type not in IDEMPOTENT_TYPES:
            outcome = Outcome.unknown("worker lost while sending; it may have been sent")
        elif not _sendable(channel):
            outcome = Outcome.failed(
                f"channel is {channel.status if channel.isActive else 'inactive'}",
                permanent=True,
            )
        else:
            began = time.monotonic()
            outcome = send_or_fail(
                channel, loaded.digest, delivery_id=claim.id, ctx=ctx, now=started_at
            )
            duration_ms = round((time.monotonic() - began) * 1000)
    finally:
        if keeper is not None:
            # Renewals moved the fence: record under the lease as it stands now.
            claim = replace(claim, lease_until=keeper.release_delivery(claim.id))
    record = functools.partial(
        records.record if records is not None else record_outcome,
        claim=claim,
        channel=channel,
        outcome=outcome,
        rng=rng,
        started_at=started_at,
        duration_ms=duration_ms,
    )
    try:
        retry_at = record(conn, now=clock())
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        # The database restarted during the send: record on a new connection (the fence
        # makes a record that did land the first time a no-op).
        with engine.connect() as fresh:
            retry_at = record(fresh, now=clock())
    return DeliverResult(outcome, retry_at)


def _sendable(channel: Channel | ChannelTarget) -> bool:
    """Whether a send is tried at all (a broken or inactive channel fails without one)."""
    return channel.isActive and channel.status != "broken"


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
