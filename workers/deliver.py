"""The deliver actor: claim a delivery, send, record; a retry is a delayed message."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import dramatiq
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS
from core.delivery.claim_group import ClaimGroup
from core.delivery.claims import DELIVERY_LEASE
from core.delivery.deliveries import DeliverResult, SendContext, deliver_in_turn
from core.delivery.record_group import RecordGroup
from core.scheduling.leases import LeaseKeeper
from workers.broker import BROKER_ERRORS, DELIVER_QUEUE

log = logging.getLogger(__name__)

#: Actor name of deliveries (the message's ``actor_name``).
DELIVER_ACTOR = "deliver"
#: Longest one deliver actor may take: a send's own deadline is far shorter (60 s), and a
#: batch starts no send after its budget.
DELIVER_TIME_LIMIT = timedelta(minutes=2)
#: Deliveries one message of a backlog carries (the sweeper's re-enqueue).
DELIVERY_BATCH_SIZE = 20
#: A batch starts no new send this long after its first: one slow receiver holds back
#: the rest of its batch at most this long plus its own send's deadline.
BATCH_BUDGET = timedelta(seconds=10)


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
    budget: timedelta = BATCH_BUDGET,
) -> dramatiq.Actor[..., None]:
    """Declare ``deliver`` on ``broker``: a message names one delivery or a batch of them,
    sent in turn (``budget``: see :func:`core.delivery.deliveries.deliver_in_turn`; the
    rest go back to the queue). ``context`` builds the send context once; ``keeper``
    renews a claim's lease while its send is in progress."""
    made: list[SendContext] = []
    claims, records = ClaimGroup(), RecordGroup()

    def deliver_batch(*delivery_ids: str) -> None:
        if not made:
            made.append(context())
        done = 0
        try:
            for delivery_id, result in deliver_in_turn(
                engine,
                delivery_ids,
                made[0],
                lease=lease,
                keeper=keeper,
                budget=budget,
                claims=claims,
                records=records,
            ):
                _report(broker, delivery_id, result)
                done += 1
        except OUTAGE_ERRORS as exc:
            # The whole message is retried: the deliveries it already settled find
            # nothing to claim.
            log.warning("deliveries %s: the database is unavailable; will retry", delivery_ids)
            raise RetryDelivery(f"database unavailable: {type(exc).__name__}") from exc
        except BaseException:
            # A defect or the time limit in one delivery (left to its lease and the
            # sweeper): the batch mates after it go back to the queue now.
            _hand_back(broker, delivery_ids[done + 1 :])
            raise
        if done < len(delivery_ids):
            log.info(
                "batch over its budget: %d deliveries back to the queue", len(delivery_ids) - done
            )
            broker.enqueue(delivery_message(*delivery_ids[done:]))

    decorate = dramatiq.actor(
        actor_name=DELIVER_ACTOR,
        queue_name=DELIVER_QUEUE,
        broker=broker,
        time_limit=int(DELIVER_TIME_LIMIT.total_seconds() * 1000),
        # The database schedules the retries of sends (backoff, Retry-After); dramatiq
        # only retries a delivery whose database was unreachable.
        retry_when=lambda retries, exc: isinstance(exc, RetryDelivery),
    )
    return decorate(deliver_batch)


def _hand_back(broker: dramatiq.Broker, delivery_ids: tuple[str, ...]) -> None:
    """Enqueue what is left of a failing batch (the sweeper finds it if the broker is
    unreachable too)."""
    if not delivery_ids:
        return
    try:
        broker.enqueue(delivery_message(*delivery_ids))
    except BROKER_ERRORS:
        log.warning("%d deliveries of a failed batch left to the sweeper", len(delivery_ids))


def _report(broker: dramatiq.Broker, delivery_id: str, result: DeliverResult) -> None:
    """Log what one delivery's attempt did; a retry is a delayed message of its own."""
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


def delivery_message(*delivery_ids: str) -> dramatiq.Message[None]:
    """The message of one delivery or a batch, built without the actor (schedulers send
    it too)."""
    return dramatiq.Message(
        queue_name=DELIVER_QUEUE,
        actor_name=DELIVER_ACTOR,
        args=delivery_ids,
        kwargs={},
        options={},
    )


def enqueue_deliveries(
    broker: dramatiq.Broker, delivery_ids: list[str], *, batch_size: int = 1
) -> None:
    """Enqueue ``delivery_ids``, ``batch_size`` per message (duplicates are harmless: the
    claim decides). A run's own deliveries go one per message, so its channels are sent
    side by side; a backlog (the sweeper's) goes in batches of
    :data:`DELIVERY_BATCH_SIZE`, which share a message and a pooled connection."""
    for start in range(0, len(delivery_ids), batch_size):
        broker.enqueue(delivery_message(*delivery_ids[start : start + batch_size]))
