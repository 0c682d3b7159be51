"""The tick loop: fire due schedules (one transaction), enqueue after commit, sweep.

Replicas need no leader: ``FOR UPDATE SKIP LOCKED`` hands each due schedule to exactly
one of them, and the unique (schedule, scheduledFor) constraint makes a repeated fire
a no-op. A replica killed between commit and enqueue leaves runs without
``enqueuedAt``; any replica's sweeper enqueues them after ``orphan_grace``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS, Outage
from core.db.session import unit_of_work
from core.delivery.deliveries import SWEEP_GRACE, deliveries_to_enqueue
from core.health.detect import HealthPolicy, check_health
from core.ingest.source_clock import REFRESH_BATCH_SIZE, sources_to_refresh
from core.ops.retention import PRUNE_BUDGET_S, RetentionPolicy, exclusive_pruner, prune
from core.scheduling.fire import (
    FIRE_BATCH_SIZE,
    database_now,
    fire_due_schedules,
    seconds_until_next_fire,
)
from core.scheduling.runs import (
    ORPHAN_GRACE,
    REQUEUE_AFTER,
    SWEEP_BATCH_SIZE,
    mark_enqueued,
    recover_after_restart,
    runs_to_enqueue,
)

log = logging.getLogger(__name__)

#: Tick intervals between two sweeps of lost or orphaned runs.
SWEEP_EVERY_TICKS = 6

Enqueue = Callable[[list[str]], None]


class Scheduler:
    """One scheduler replica.

    Parameters:
      engine: the database holding schedules and runs.
      enqueue: sends one message per run id (after the runs are committed).
      batch_size: schedules claimed per transaction.
      orphan_grace: age of a never-enqueued run the sweeper enqueues.
      requeue_after: age of an enqueue after which a still-queued run is sent again.
      after_commit: fault-injection hook called with the new run ids between commit and
        enqueue (tests kill the process there); None in normal operation.
      enqueue_deliveries: sends deliver messages for delivery ids (in batches); given, the sweep
        also re-enqueues deliveries that are due or whose worker died.
      retention: what to prune; None prunes nothing.
      broker_lost: says whether the broker lost its data since it was last asked (a
        Redis restart without persistence); None for the in-process broker.
      enqueue_refreshes: sends one refresh message per source id; given, every tick
        also sends the refreshes of the sources due on their own clock.
      prune_every: pause between two retention passes (a pass that runs out of its time
        budget goes on at the next tick instead).
      health: when sources, searches and channels count as failing; None: no health
        checks.
      health_every: pause between two health checks.
      enqueue_health_alerts: sends one alert message per organization with something
        to tell.
    """

    def __init__(
        self,
        engine: Engine,
        enqueue: Enqueue,
        *,
        batch_size: int = FIRE_BATCH_SIZE,
        orphan_grace: timedelta = ORPHAN_GRACE,
        requeue_after: timedelta = REQUEUE_AFTER,
        after_commit: Callable[[list[str]], None] | None = None,
        enqueue_deliveries: Enqueue | None = None,
        retention: RetentionPolicy | None = None,
        prune_every: timedelta | None = None,
        broker_lost: Callable[[], bool] | None = None,
        enqueue_refreshes: Enqueue | None = None,
        health: HealthPolicy | None = None,
        health_every: timedelta | None = None,
        enqueue_health_alerts: Enqueue | None = None,
    ) -> None:
        self.engine = engine
        self.enqueue = enqueue
        self.batch_size = batch_size
        self.orphan_grace = orphan_grace
        self.requeue_after = requeue_after
        self.after_commit = after_commit
        self.enqueue_deliveries = enqueue_deliveries
        self.retention = retention
        self.prune_every = prune_every
        self.broker_lost = broker_lost
        self.enqueue_refreshes = enqueue_refreshes
        self._next_prune = time.monotonic()
        self.health = health
        self.health_every = health_every
        self.enqueue_health_alerts = enqueue_health_alerts
        self._next_health_check = time.monotonic()

    def _enqueue(self, run_ids: list[str], *, mark: bool) -> None:
        if not run_ids:
            return
        if self.after_commit is not None:
            self.after_commit(run_ids)
        self.enqueue(run_ids)
        if mark:
            with unit_of_work(self.engine) as session:
                mark_enqueued(session, run_ids)  # by the database clock

    def tick(self) -> int:
        """Fire everything due now, batch after batch; returns the number of runs created."""
        created = 0
        while True:
            with unit_of_work(self.engine) as session:
                # Due by the database clock, read in the claiming query itself.
                run_ids, claimed = fire_due_schedules(session, batch_size=self.batch_size)
            self._enqueue(run_ids, mark=True)
            created += len(run_ids)
            if claimed < self.batch_size:
                return created

    def refresh_sources(self) -> int:
        """Send the refreshes of every source due on its own clock; returns how many."""
        if self.enqueue_refreshes is None:
            return 0
        sent = 0
        while True:
            with unit_of_work(self.engine) as session:
                source_ids = sources_to_refresh(session, now=database_now(session))
            if source_ids:
                self.enqueue_refreshes(source_ids)
            sent += len(source_ids)
            if len(source_ids) < REFRESH_BATCH_SIZE:
                return sent

    def sweep(self, *, lost_since: datetime | None = None) -> int:
        """Re-enqueue runs the queue lost or never got; returns how many.

        ``lost_since``: the broker was found to have lost its data at this database time,
        so every queued run enqueued before it is sent again at once (batch after batch),
        not after ``requeue_after``.
        """
        swept = 0
        while True:
            with unit_of_work(self.engine) as session:
                run_ids = runs_to_enqueue(
                    session,
                    now=database_now(session),
                    orphan_grace=self.orphan_grace,
                    requeue_after=self.requeue_after,
                    enqueued_before=lost_since,
                )
            self._enqueue(run_ids, mark=False)  # marked in the sweep's own transaction
            swept += len(run_ids)
            if lost_since is None or len(run_ids) < SWEEP_BATCH_SIZE:
                break
        if swept:
            log.warning("sweeper re-enqueued %d runs", swept)
        if self.enqueue_deliveries is not None:
            self.sweep_deliveries(broker_lost=lost_since is not None)
        return swept

    def sweep_deliveries(self, *, broker_lost: bool = False) -> int:
        """Re-enqueue deliveries due a while ago or abandoned mid-send; returns how many
        (with ``broker_lost``, every pending delivery that is due)."""
        if self.enqueue_deliveries is None:
            return 0
        grace = timedelta(0) if broker_lost else SWEEP_GRACE
        with unit_of_work(self.engine) as session:
            delivery_ids = deliveries_to_enqueue(session, now=database_now(session), grace=grace)
        if delivery_ids:
            self.enqueue_deliveries(delivery_ids)
            log.info("sweeper enqueued %d due deliveries", len(delivery_ids))
        return len(delivery_ids)

    def prune_if_due(self) -> int:
        """One time-boxed retention pass when one is due; returns the rows deleted."""
        if self.retention is None or self.prune_every is None:
            return 0
        if time.monotonic() < self._next_prune:
            return 0
        with exclusive_pruner(self.engine) as mine:
            if not mine:  # another replica is pruning
                self._next_prune = time.monotonic() + self.prune_every.total_seconds()
                return 0
            report = prune(self.engine, self.retention, now=utcnow(), budget_s=PRUNE_BUDGET_S)
        if report.complete:
            self._next_prune = time.monotonic() + self.prune_every.total_seconds()
        if report.total:
            done = {name: n for name, n in report.deleted.items() if n}
            log.info("retention pruned %s%s", done, "" if report.complete else " (continuing)")
        return report.total

    def check_health_if_due(self) -> int:
        """One health check when one is due (database only: compare states, record
        transitions), then one alert message per organization with something to tell;
        returns how many organizations were sent one. Replicas may check at once: the
        transitions are conditional writes and the alert's claim decides who sends."""
        if self.health is None or self.health_every is None or self.enqueue_health_alerts is None:
            return 0
        if time.monotonic() < self._next_health_check:
            return 0
        self._next_health_check = time.monotonic() + self.health_every.total_seconds()
        with unit_of_work(self.engine) as session:
            org_ids = check_health(session, self.health, now=database_now(session))
        if org_ids:
            self.enqueue_health_alerts(org_ids)
            log.info("health check: alerts to send for %d organizations", len(org_ids))
        return len(org_ids)

    def recover(self) -> int:
        """Embedded start-up: the in-process queue is empty and no other worker exists,
        so every unfinished run is enqueued again."""
        with unit_of_work(self.engine) as session:
            run_ids = recover_after_restart(session, now=database_now(session))
        self._enqueue(run_ids, mark=True)
        return len(run_ids)

    def seconds_to_wait(self, interval_s: float) -> float:
        """Until the earliest pending fire, at most ``interval_s``: a fire is taken at its
        due instant instead of up to one tick late. The cap still bounds how long a
        schedule created or changed meanwhile waits."""
        with unit_of_work(self.engine) as session:
            until = seconds_until_next_fire(session)
        return interval_s if until is None else min(until, interval_s)

    def step(self, *, sweep: bool) -> None:
        """One pass of the loop: fire what is due, sweep (at once, if the broker lost its
        data since the last look), prune and check health when due."""
        lost_since = None
        if self.broker_lost is not None and self.broker_lost():
            with unit_of_work(self.engine) as session:
                lost_since = database_now(session)  # runs this tick sends are not lost
            log.warning("the broker lost its data: re-enqueuing every queued run now")
        created = self.tick()
        if created:
            log.info("scheduler fired %d runs", created)
        refreshed = self.refresh_sources()
        if refreshed:
            log.debug("source clock sent %d refreshes", refreshed)
        if sweep or lost_since is not None:
            self.sweep(lost_since=lost_since)
        self.prune_if_due()
        self.check_health_if_due()

    def run_forever(
        self,
        stop: threading.Event,
        interval_s: float,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick at each pending fire (at least every ``interval_s``) until ``stop`` is
        set, sweeping every ``SWEEP_EVERY_TICKS`` intervals. An unreachable database or
        broker is logged once when the outage starts and once when it ends. ``on_tick``
        runs after every tick, whatever its outcome (the process's heartbeat)."""
        next_sweep = time.monotonic()
        outage = Outage(log)
        while not stop.is_set():
            wait = interval_s
            try:
                sweep = time.monotonic() >= next_sweep
                self.step(sweep=sweep)
                if sweep:
                    next_sweep = time.monotonic() + SWEEP_EVERY_TICKS * interval_s
                wait = self.seconds_to_wait(interval_s)
                outage.ended()
            except OUTAGE_ERRORS as exc:
                outage.started(exc)
            except Exception:
                log.exception("scheduler tick failed")
            if on_tick is not None:
                on_tick()
            stop.wait(wait)
