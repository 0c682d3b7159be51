"""The refresh actor: one source on its own clock; it starts the runs owed to its news."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import dramatiq
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS
from core.db.session import unit_of_work
from core.fetch import GuardedClient
from core.fetch.politeness import Limiter
from core.ingest.refresh import refresh
from core.ingest.source_clock import ClockPolicy
from core.scheduling.runs import mark_enqueued
from workers.broker import REFRESH_QUEUE, enqueue_many

log = logging.getLogger(__name__)

#: Actor name of source refreshes (the message's ``actor_name``).
REFRESH_ACTOR = "refresh_source"
#: Milliseconds a refresh may take: a fetch's 30 s deadline, a short wait for its
#: host's slot, and the store.
REFRESH_TIME_LIMIT_MS = 90_000


def declare_refresh_actor(
    broker: dramatiq.Broker,
    engine: Engine,
    client: GuardedClient,
    *,
    limiter: Limiter | None,
    policy: ClockPolicy,
    enqueue_runs: Callable[[list[str]], None],
) -> dramatiq.Actor[..., None]:
    """Declare ``refresh_source`` on ``broker``: refresh one source (claim, fetch, store,
    next fetch), then enqueue the runs its new entries are owed to."""

    def refresh_source(source_id: str, follow_up: Sequence[str] = ()) -> None:
        done = refresh(
            engine,
            source_id,
            client,
            utcnow(),
            limiter=limiter,
            policy=policy,
            follow_up=follow_up,
        )
        outcome = done.outcome
        log.info(
            "source %s: %s%s",
            source_id,
            outcome.state,
            f" ({outcome.new_entries} new)" if outcome.new_entries else "",
        )
        if outcome.retry_in is not None and follow_up:
            # Someone asked for this source now: keep their follow-up run rather than
            # leave the source to the clock, which would start no run for it.
            delay_ms = int(outcome.retry_in.total_seconds() * 1000) + 1
            broker.enqueue(refresh_message(source_id, follow_up), delay=delay_ms)
        if done.run_ids:
            run_ids = list(done.run_ids)
            enqueue_runs(run_ids)
            with unit_of_work(engine) as session:
                mark_enqueued(session, run_ids)

    decorate = dramatiq.actor(
        actor_name=REFRESH_ACTOR,
        queue_name=REFRESH_QUEUE,
        broker=broker,
        time_limit=REFRESH_TIME_LIMIT_MS,
        # A lost or failed refresh is sent again by the source clock (queuedUntil); only
        # an unreachable database or Redis is retried here, never dead-lettered.
        retry_when=lambda retries, exc: isinstance(exc, OUTAGE_ERRORS),
    )
    return decorate(refresh_source)


def refresh_message(source_id: str, follow_up: Sequence[str] = ()) -> dramatiq.Message[None]:
    """The message of one refresh, built without the actor (the scheduler sends it)."""
    kwargs = {"follow_up": list(follow_up)} if follow_up else {}
    return dramatiq.Message(
        queue_name=REFRESH_QUEUE,
        actor_name=REFRESH_ACTOR,
        args=(source_id,),
        kwargs=kwargs,
        options={},
    )


def enqueue_refreshes(
    broker: dramatiq.Broker, source_ids: list[str], follow_up: Sequence[str] = ()
) -> None:
    """One message per source (duplicates are harmless: the claim decides)."""
    enqueue_many(broker, [refresh_message(source_id, follow_up) for source_id in source_ids])
