"""The run actor: claim the run, do its step, record the outcome; nothing more."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS
from core.db.session import transaction, unit_of_work
from core.scheduling.leases import LeaseKeeper
from core.scheduling.runs import (
    RUN_LEASE,
    ClaimedRun,
    LeaseLost,
    claim_run_on,
    complete_run,
    fail_run,
)
from core.scheduling.steps import RunPhases, RunStep, as_phases, describe_error, is_transient
from workers.broker import FETCH_QUEUE, enqueue_many

log = logging.getLogger(__name__)

#: Actor name of search runs (the message's ``actor_name``).
RUN_ACTOR = "run_search"
#: Longest a run's actor may take (its lease is renewed meanwhile, see ``LeaseKeeper``).
RUN_TIME_LIMIT = timedelta(minutes=10)


class RetryRun(Exception):
    """Raised after a transient failure was recorded, or when the database could not be
    reached to claim or record the run, so dramatiq retries with backoff (the claim
    decides what a retry does: nothing, if the run was finished meanwhile)."""


def declare_run_actor(
    broker: dramatiq.Broker,
    engine: Engine,
    step: RunStep | RunPhases,
    *,
    lease: timedelta = RUN_LEASE,
    time_limit: timedelta = RUN_TIME_LIMIT,
    keeper: LeaseKeeper | None = None,
    after_success: Callable[[dict[str, Any]], None] | None = None,
) -> dramatiq.Actor[[str], None]:
    """Declare ``run_search`` on ``broker``; it runs ``step`` against ``engine``: its
    fetch phase first (committing on its own), then its step in the run's transaction.

    ``keeper`` renews the run's lease while the actor works on it (without one, the
    lease must outlast the step). ``after_success`` gets the committed run's stats (the
    pipeline enqueues the deliveries the run created).
    """
    phases = as_phases(step)

    def run_search(run_id: str) -> None:
        with ExitStack() as held:
            conn, claimed = _claim(held, engine, run_id, lease)
            if claimed is None:
                log.info("run %s not claimable (done, running elsewhere or exhausted)", run_id)
                return
            log.info("run %s attempt %d started", run_id, claimed.attempt)
            # One pooled connection for the claim, the step and the outcome, unless a
            # fetch phase comes first: network I/O, so the connection goes back first.
            step_on: Connection | None = conn
            if phases.fetch is not None:
                held.close()
                step_on = None
            if keeper is not None:
                keeper.hold_run(claimed.id, claimed.attempt)
            try:
                stats = _work(claimed, step_on)
            finally:
                if keeper is not None:
                    keeper.release_run(claimed.id)
        if stats is None:
            return
        log.info("run %s succeeded: %s", run_id, stats)
        if after_success is not None:
            after_success(stats)

    def _work(claimed: ClaimedRun, conn: Connection | None) -> dict[str, Any] | None:
        """The step and its outcome (on ``conn``, else a pooled connection); None when
        there is nothing more to do."""
        run_id = claimed.id
        try:
            fetched = phases.fetch(engine, claimed, utcnow()) if phases.fetch else {}
            with transaction(Session(bind=conn or engine, expire_on_commit=False)) as session:
                stats = {**fetched, **phases.step(session, claimed, utcnow())}
                complete_run(session, claimed, now=utcnow(), stats=stats)
        except LeaseLost:
            log.warning("run %s was taken over after its lease expired; work discarded", run_id)
            return None
        except Exception as exc:
            transient = is_transient(exc)
            error = describe_error(exc, transient=transient)
            try:
                with unit_of_work(engine) as session:
                    retry = fail_run(session, claimed, now=utcnow(), error=error, retry=transient)
            except OUTAGE_ERRORS as lost:
                # Nothing recorded: the retried message finds the run again once its
                # lease has run out (or the sweeper does).
                log.warning(
                    "run %s attempt %d failed, database unavailable", run_id, claimed.attempt
                )
                raise RetryRun(f"database unavailable: {type(lost).__name__}") from exc
            log.warning(
                "run %s attempt %d failed (%s)%s",
                run_id,
                claimed.attempt,
                error["error"],
                ", will retry" if retry else "",
            )
            if retry:
                raise RetryRun(error["error"]) from exc
            return None
        return stats

    decorate = dramatiq.actor(
        actor_name=RUN_ACTOR,
        queue_name=FETCH_QUEUE,
        broker=broker,
        time_limit=int(time_limit.total_seconds() * 1000),
        # Only RetryRun is retried by dramatiq (as often as it is raised: the database
        # counts attempts); anything else escaping is a bug whose run the sweeper
        # recovers after the lease.
        retry_when=lambda retries, exc: isinstance(exc, RetryRun),
    )
    return decorate(run_search)


def _claim(
    held: ExitStack, engine: Engine, run_id: str, lease: timedelta
) -> tuple[Connection, ClaimedRun | None]:
    """A pooled connection (open until ``held`` closes) and the run's claim on it; an
    unreachable database is a :class:`RetryRun`."""
    try:
        conn = held.enter_context(engine.connect())
        return conn, claim_run_on(conn, run_id, now=utcnow(), lease=lease)
    except OUTAGE_ERRORS as exc:
        log.warning("run %s not claimed, the database is unavailable; will retry", run_id)
        raise RetryRun(f"database unavailable at claim: {type(exc).__name__}") from exc


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
