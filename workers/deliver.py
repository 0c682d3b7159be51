"""The deliver actor: claim a delivery, send, record; a retry is a delayed message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import dramatiq
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS
from core.delivery.claims import DELIVERY_LEASE
from core.delivery.deliveries import SendContext, deliver
from core.scheduling.leases import LeaseKeeper
from workers.broker import DELIVER_QUEUE

log = logging.getLogger(__name__)

#: Actor name of deliveries (the message's ``actor_name``).
DELIVER_ACTOR = "deliver"
#: Longest one deliver actor may take: a send's own deadline is far shorter (60 s).
DELIVER_TIME_LIMIT = timedelta(minutes=2)


class RetryDelivery(Exception):
    """The database could not be reached to claim or record the delivery: dramatiq
    retries the message with backoff (never a dead letter; the claim decides)."""


def declare_deliver_actor(
    broker: dramatiq.Broker,
    engine: Engine,
    context: Callable[[], SendContext],
    *,
    lease: timedelta = DELIVERY_LEASE,
    keeper: LeaseKeeper | None = None,
) -> dramatiq.Actor[[str], None]:
    """Declare ``deliver`` on ``broker``; ``context`` builds the send context once;
    ``keeper`` renews a claim's lease while its send is in progress."""
    made: list[SendContext] = []

    def deliver_one(delivery_id: str) -> None:
        if not made:
            made.append(context())
        try:
            result = deliver(engine, delivery_id, made[0], lease=lease, keeper=keeper)
        except OUTAGE_ERRORS as exc:
            log.warning("delivery %s: the database is unavailable; will retry", delivery_id)
            raise RetryDelivery(f"database unavailable: {type(exc).__name__}") from exc
        if result.held is not None:  # the sweeper enqueues it when the day turns
            log.info("delivery %s %s", delivery_id, result.held)
            return
        if result.outcome is None:
            log.info("delivery %s not claimable (done, not due or held elsewhere)", delivery_id)
            return
        log.info("delivery %s: %s %s", delivery_id, result.outcome.kind, result.outcome.error or "")
        if result.retry_at is not None:
            delay_ms = max(0, int((result.retry_at - utcnow()).total_seconds() * 1000))
            broker.enqueue(delivery_message(delivery_id), delay=delay_ms)

    decorate = dramatiq.actor(
        actor_name=DELIVER_ACTOR,
        queue_name=DELIVER_QUEUE,
        broker=broker,
        time_limit=int(DELIVER_TIME_LIMIT.total_seconds() * 1000),
        # The database schedules the retries of sends (backoff, Retry-After); dramatiq
        # only retries a delivery whose database was unreachable.
        retry_when=lambda retries, exc: isinstance(exc, RetryDelivery),
    )
    return decorate(deliver_one)


def delivery_message(delivery_id: str) -> dramatiq.Message[None]:
    """The message of one delivery, built without the actor (schedulers send it too)."""
    return dramatiq.Message(
        queue_name=DELIVER_QUEUE,
        actor_name=DELIVER_ACTOR,
        args=(delivery_id,),
        kwargs={},
        options={},
    )


def enqueue_deliveries(broker: dramatiq.Broker, delivery_ids: list[str]) -> None:
    """One message per delivery (duplicates are harmless: the claim decides)."""
    for delivery_id in delivery_ids:
        broker.enqueue(delivery_message(delivery_id))
