"""The pipeline end to end: scheduler tick -> broker -> a real dramatiq Worker -> step.

Runs on the in-process StubBroker with SQLite (embedded) and on the real Redis broker
with PostgreSQL (production). The test steps write an audit row per execution, so
"executed once" is counted in the database, not trusted from the queue.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, select

from core.config import Settings
from core.db.models import Run
from core.db.session import unit_of_work
from core.scheduling.fire import database_now, fire_due_schedules
from core.scheduling.runs import MAX_RUN_ATTEMPTS, REQUEUE_AFTER
from core.scheduling.steps import RunStep
from scheduler.loop import Scheduler
from tests.support import steps
from tests.support.factories import due_schedule
from workers.broker import build_broker
from workers.pipeline import build_pipeline
from workers.runs import enqueue_runs

#: Retry backoff bounds (ms) of the test brokers: the real 5 s minimum would stall tests.
TEST_MIN_BACKOFF_MS = 10
TEST_MAX_BACKOFF_MS = 50
#: Seconds a test waits for runs to settle.
SETTLE_S = 30.0


@dataclass
class Pipeline:
    """A broker with the run actor declared and a running worker; ``flush`` empties it."""

    engine: Engine
    broker: dramatiq.Broker
    flush: Callable[[], None]
    workers: list[dramatiq.Worker] = field(default_factory=list)

    def scheduler(self, *, requeue_after: timedelta = REQUEUE_AFTER) -> Scheduler:
        return Scheduler(
            self.engine, lambda ids: enqueue_runs(self.broker, ids), requeue_after=requeue_after
        )

    def start_worker(self) -> None:
        self.broker.emit_after("process_boot")
        worker = dramatiq.Worker(self.broker, worker_threads=4, worker_timeout=100)
        worker.start()
        self.workers.append(worker)

    def runs(self) -> list[Run]:
        with unit_of_work(self.engine) as session:
            return list(session.scalars(select(Run)))

    def settle(self, count: int, timeout: float = SETTLE_S) -> list[Run]:
        """Wait for ``count`` runs to reach a final state, then a little longer so a
        duplicate execution, if any, would have time to show."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if len(runs) == count and all(r.state in {"succeeded", "failed"} for r in runs):
                time.sleep(0.3)
                return self.runs()
            time.sleep(0.05)
        raise AssertionError(f"runs did not settle: {[(r.id, r.state) for r in self.runs()]}")


@pytest.fixture(params=["stub-sqlite", "redis-postgresql"])
def make_pipeline(request: pytest.FixtureRequest) -> Iterator[Callable[[RunStep], Pipeline]]:
    built: list[Pipeline] = []

    def make(step: RunStep) -> Pipeline:
        if request.param == "stub-sqlite":
            engine: Engine = request.getfixturevalue("sqlite_engine")
            settings = Settings(database_url=str(engine.url))
            namespace = "newsmon"
        else:
            engine = request.getfixturevalue("pg_engine")
            url: str = request.getfixturevalue("redis_url")
            settings = Settings(
                database_url=str(engine.url), broker_url=url, encryption_keys="A" * 43
            )
            namespace = f"newsmon-test-{secrets.token_hex(4)}"
        broker = build_broker(
            settings,
            namespace=namespace,
            min_backoff_ms=TEST_MIN_BACKOFF_MS,
            max_backoff_ms=TEST_MAX_BACKOFF_MS,
        )
        build_pipeline(settings, engine, run_step=step, broker=broker)
        if settings.broker_url:
            flush: Callable[[], None] = partial(flush_redis, settings.broker_url)
        else:
            flush = broker.flush_all
        pipeline = Pipeline(engine, broker, flush)
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        for worker in pipeline.workers:
            worker.stop(timeout=5000)
        pipeline.broker.close()


def flush_redis(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def due_schedules(engine: Engine, count: int) -> None:
    with unit_of_work(engine) as session:
        for i in range(count):
            due_schedule(session, f"org{i}")


def test_due_schedule_runs_its_step_once(make_pipeline: Callable[[RunStep], Pipeline]) -> None:
    pipeline = make_pipeline(steps.record_step)
    due_schedules(pipeline.engine, 3)
    pipeline.start_worker()

    assert pipeline.scheduler().tick() == 3

    runs = pipeline.settle(3)
    assert [(r.state, r.attempts) for r in runs] == [("succeeded", 1)] * 3
    for run in runs:
        assert steps.executions(pipeline.engine, run.id) == 1
        assert run.stats == {"attempt": 1}


def test_same_run_enqueued_five_times_concurrently_executes_once(
    make_pipeline: Callable[[RunStep], Pipeline],
) -> None:
    pipeline = make_pipeline(steps.record_step)
    due_schedules(pipeline.engine, 1)
    with unit_of_work(pipeline.engine) as session:
        (run_id,), _ = fire_due_schedules(session, now=database_now(session))
    pipeline.start_worker()
    barrier = threading.Barrier(5)

    def send() -> None:
        barrier.wait()
        enqueue_runs(pipeline.broker, [run_id])

    senders = [threading.Thread(target=send) for _ in range(5)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()

    (run,) = pipeline.settle(1)
    time.sleep(0.5)  # the four duplicates are consumed and acked as no-ops
    assert (run.state, run.attempts) == ("succeeded", 1)
    assert steps.executions(pipeline.engine, run_id) == 1


def test_transient_failure_is_retried_then_succeeds(
    make_pipeline: Callable[[RunStep], Pipeline],
) -> None:
    pipeline = make_pipeline(steps.flaky_step)
    due_schedules(pipeline.engine, 1)
    pipeline.start_worker()
    pipeline.scheduler().tick()

    (run,) = pipeline.settle(1)
    assert (run.state, run.attempts, run.error) == ("succeeded", 2, None)
    assert steps.executions(pipeline.engine, run.id) == 1


def test_permanent_error_fails_without_retry(
    make_pipeline: Callable[[RunStep], Pipeline],
) -> None:
    pipeline = make_pipeline(steps.broken_step)
    due_schedules(pipeline.engine, 1)
    pipeline.start_worker()
    pipeline.scheduler().tick()

    (run,) = pipeline.settle(1)
    time.sleep(0.3)  # a retry would come after at most TEST_MAX_BACKOFF_MS
    (run,) = pipeline.runs()
    assert (run.state, run.attempts) == ("failed", 1)
    assert run.error is not None and run.error["permanent"] is True
    assert "query does not parse" in run.error["error"]


def test_always_transient_failure_stops_after_max_attempts(
    make_pipeline: Callable[[RunStep], Pipeline],
) -> None:
    pipeline = make_pipeline(steps.down_step)
    due_schedules(pipeline.engine, 1)
    pipeline.start_worker()
    pipeline.scheduler().tick()

    (run,) = pipeline.settle(1)
    time.sleep(0.3)
    (run,) = pipeline.runs()
    assert (run.state, run.attempts) == ("failed", MAX_RUN_ATTEMPTS)
    assert run.error is not None and "TimeoutError" in run.error["error"]


def test_flushed_broker_is_refilled_by_the_sweeper_and_each_run_executes_once(
    make_pipeline: Callable[[RunStep], Pipeline],
) -> None:
    pipeline = make_pipeline(steps.record_step)
    due_schedules(pipeline.engine, 5)
    scheduler = pipeline.scheduler(requeue_after=timedelta(milliseconds=200))
    assert scheduler.tick() == 5  # enqueued, but no worker is running yet

    pipeline.flush()  # the broker loses everything (Redis keeps nothing on disk)
    pipeline.start_worker()
    time.sleep(0.3)
    assert all(r.state == "queued" for r in pipeline.runs())

    assert scheduler.sweep() == 5
    runs = pipeline.settle(5)
    assert [(r.state, r.attempts) for r in runs] == [("succeeded", 1)] * 5
    assert all(steps.executions(pipeline.engine, r.id) == 1 for r in runs)
