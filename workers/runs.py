"""The run actor: claim the run, do its step, record the outcome; nothing more."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.session import unit_of_work
from core.scheduling.runs import RUN_LEASE, LeaseLost, claim_run, complete_run, fail_run
from core.scheduling.steps import RunPhases, RunStep, as_phases, describe_error, is_transient
from workers.broker import FETCH_QUEUE, enqueue_many

log = logging.getLogger(__name__)

#: Actor name of search runs (the message's ``actor_name``).
RUN_ACTOR = "run_search"


class RetryRun(Exception):
    """Raised after a transient failure was recorded, so dramatiq retries with backoff."""


def declare_run_actor(
    broker: dramatiq.Broker,
    engine: Engine,
    step: RunStep | RunPhases,
    *,
    lease: timedelta = RUN_LEASE,
    after_success: Callable[[dict[str, Any]], None] | None = None,
) -> dramatiq.Actor[[str], None]:
    """Declare ``run_search`` on ``broker``; it runs ``step`` against ``engine``: its
    fetch phase first (committing on its own), then its step in the run's transaction.

    ``after_success`` gets the committed run's stats (the pipeline enqueues the
    deliveries the run created).
    """
    phases = as_phases(step)

    def run_search(run_id: str) -> None:
        with unit_of_work(engine) as session:
            claimed = claim_run(session, run_id, now=utcnow(), lease=lease)
        if claimed is None:
            log.info("run %s not claimable (done, running elsewhere or exhausted)", run_id)
            return
        log.info("run %s attempt %d started", run_id, claimed.attempt)
        try:
            fetched = phases.fetch(engine, claimed, utcnow()) if phases.fetch else {}
            with unit_of_work(engine) as session:
                stats = {**fetched, **phases.step(session, claimed, utcnow())}
                complete_run(session, claimed, now=utcnow(), stats=stats)
        except LeaseLost:
            log.warning("run %s was taken over after its lease expired; work discarded", run_id)
            return
        except Exception as exc:
            transient = is_transient(exc)
            error = describe_error(exc, transient=transient)
            with unit_of_work(engine) as session:
                retry = fail_run(session, claimed, now=utcnow(), error=error, retry=transient)
            log.warning(
                "run %s attempt %d failed (%s)%s",
                run_id,
                claimed.attempt,
                error["error"],
                ", will retry" if retry else "",
            )
            if retry:
                raise RetryRun(error["error"]) from exc
            return
        log.info("run %s succeeded: %s", run_id, stats)
        if after_success is not None:
            after_success(stats)

    decorate = dramatiq.actor(
        actor_name=RUN_ACTOR,
        queue_name=FETCH_QUEUE,
        broker=broker,
        time_limit=int(lease.total_seconds() * 1000),
        # Only RetryRun is retried by dramatiq; anything else escaping is a bug whose
        # run the sweeper recovers after the lease.
        retry_when=lambda retries, exc: isinstance(exc, RetryRun),
    )
    return decorate(run_search)


def run_message(run_id: str) -> dramatiq.Message[None]:
    """The message of one run, with the run id as message id.

    Built without the actor, so a scheduler sends runs without importing what they do.
    """
    return dramatiq.Message(
        queue_name=FETCH_QUEUE,
        actor_name=RUN_ACTOR,
        args=(run_id,),
        kwargs={},
        options={},
        message_id=run_id,
    )


def enqueue_runs(broker: dramatiq.Broker, run_ids: list[str]) -> None:
    """One message per run (duplicates are harmless: the claim decides)."""
    enqueue_many(broker, [run_message(run_id) for run_id in run_ids])
