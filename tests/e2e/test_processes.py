"""Real `newsmon scheduler` and `newsmon worker` processes on PostgreSQL and Redis:
replicas racing on bursts, SIGKILL between commit and enqueue, SIGKILL mid-actor (recovered
by the sweeper, and by the broker's heartbeat alone), SIGTERM.

Timings are shortened through settings (tick, lease, orphan grace) and the test hooks
of cli/main.py (``NEWSMON_TEST_*``); nothing else differs from production.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import redis
from dramatiq import Message
from sqlalchemy import Engine, func, insert, select, update

from core.db.models import News, Organization, Run, Schedule
from core.db.session import make_engine, unit_of_work
from core.ids import new_id
from core.scheduling.fire import database_now
from tests.support import steps
from tests.support.databases import fresh_pg_database
from tests.support.factories import YEARLY, due_schedule
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, require_service

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = [sys.executable, "-c", "from cli.main import main; main()"]
#: Schedules due at one instant in the replica test.
BURST_SCHEDULES = 3000
#: Seconds any wait of this file may take before the test fails.
WAIT_S = 40.0


class Processes:
    """Starts newsmon processes against one database and Redis namespace; kills leftovers."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.namespace = f"newsmon-e2e-{secrets.token_hex(4)}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
        self.env.update(
            PYTHONPATH=str(ROOT),  # the test steps live in tests/support
            NEWSMON_DATABASE_URL=db_url,
            NEWSMON_BROKER_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}",
            NEWSMON_TEST_BROKER_NAMESPACE=self.namespace,
            NEWSMON_ENCRYPTION_KEYS="A" * 43,
            NEWSMON_SCHEDULER_TICK_SECONDS="0.2",
            NEWSMON_WORKER_THREADS="2",
        )
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{command}-{len(self.started)}.log").open("wb")
        proc = subprocess.Popen(
            [*NEWSMON, command],
            cwd=self.tmp_path,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.started.index(proc)
        return next(self.tmp_path.glob(f"*-{index}.log")).read_text()

    def wait_log(self, proc: subprocess.Popen[bytes], text: str) -> None:
        wait_for(lambda: text in self.log(proc), f"{text!r} in the log of {proc.pid}")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def messages(self) -> Counter[str]:
        """Run ids of the messages waiting in Redis, counted (no worker consumed them).

        The queue and the message bodies are read in one MULTI, as the scheduler writes
        them (one HSET + RPUSH per batch): two separate reads could fall on either side
        of a batch and disagree.
        """
        with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB) as client:
            pipe = client.pipeline(transaction=True)
            pipe.lrange(f"{self.namespace}:fetch", 0, -1)
            pipe.hgetall(f"{self.namespace}:fetch.msgs")
            queued, bodies = pipe.execute()
        assert len(queued) == len(bodies)
        return Counter(Message.decode(body).message_id for body in bodies.values())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def engine() -> Iterator[Engine]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def procs(engine: Engine, redis_url: str, tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(engine.url.render_as_string(hide_password=False), tmp_path)
    yield processes
    processes.stop_all()


def add_schedules(engine: Engine, count: int) -> list[str]:
    """``count`` yearly schedules over 10 organizations, not due yet; returns their ids."""
    orgs = [{"id": new_id(), "name": f"Org {i}", "slug": f"org-{i}"} for i in range(10)]
    news = [
        {"id": new_id(), "organizationId": orgs[i % 10]["id"], "name": f"s{i}", "searchQuery": {}}
        for i in range(count)
    ]
    schedules: list[dict[str, object]] = [
        {
            "id": new_id(),
            "organizationId": n["organizationId"],
            "newsId": n["id"],
            "cronExpr": YEARLY,
            "nextRun": None,
        }
        for n in news
    ]
    with unit_of_work(engine) as session:
        session.execute(insert(Organization), orgs)
        session.execute(insert(News), news)
        session.execute(insert(Schedule), schedules)
    return [str(s["id"]) for s in schedules]


def fire_all_in(engine: Engine, delay: timedelta) -> datetime:
    """Make every schedule due at one instant ``delay`` from now; returns that instant."""
    with unit_of_work(engine) as session:
        instant = database_now(session) + delay
        session.execute(update(Schedule).values(nextRun=instant))
    return instant


def run_pairs(engine: Engine) -> Counter[tuple[str | None, datetime]]:
    with unit_of_work(engine) as session:
        rows = session.execute(select(Run.scheduleId, Run.scheduledFor))
        return Counter((schedule_id, at) for schedule_id, at in rows)


def all_enqueued(engine: Engine, expected: int) -> bool:
    with unit_of_work(engine) as session:
        total = session.scalar(select(func.count()).select_from(Run))
        pending = session.scalar(select(func.count()).where(Run.enqueuedAt.is_(None)))
    return total == expected and pending == 0


def test_three_replicas_fire_every_burst_exactly_once(engine: Engine, procs: Processes) -> None:
    schedule_ids = add_schedules(engine, BURST_SCHEDULES)
    replicas = [procs.start("scheduler") for _ in range(3)]
    for replica in replicas:
        procs.wait_log(replica, "scheduler started")

    instants: list[datetime] = []
    for burst in range(1, 3):
        instants.append(fire_all_in(engine, timedelta(seconds=1)))
        expected = burst * BURST_SCHEDULES
        wait_for(partial(all_enqueued, engine, expected), f"burst {burst}")

    pairs = run_pairs(engine)
    assert set(pairs) == {(s, t) for s in schedule_ids for t in instants}
    assert set(pairs.values()) == {1}
    with unit_of_work(engine) as session:
        run_ids = set(session.scalars(select(Run.id)))
    messages = procs.messages()
    assert set(messages) == run_ids
    assert set(messages.values()) == {1}
    fired = [procs.log(r).count("scheduler fired") for r in replicas]
    assert sum(1 for count in fired if count) >= 2, f"one replica did all the work: {fired}"


def test_replica_killed_between_commit_and_enqueue_leaves_orphans_for_another(
    engine: Engine, procs: Processes
) -> None:
    add_schedules(engine, BURST_SCHEDULES)
    fire_all_in(engine, timedelta(0))
    timings = {"NEWSMON_ORPHAN_GRACE_SECONDS": "3"}
    doomed = procs.start("scheduler", NEWSMON_TEST_CRASH_AFTER_COMMIT="1", **timings)
    assert doomed.wait(timeout=WAIT_S) == -signal.SIGKILL
    with unit_of_work(engine) as session:
        orphans = set(session.scalars(select(Run.id).where(Run.enqueuedAt.is_(None))))
    assert orphans  # committed, never sent
    assert procs.messages() == Counter()

    survivors = [procs.start("scheduler", **timings) for _ in range(2)]
    # The sweep marks its runs enqueued before it sends them (so two sweepers never both
    # send): wait for the database and then for the broker.
    wait_for(lambda: all_enqueued(engine, BURST_SCHEDULES), "every run enqueued")
    wait_for(lambda: len(procs.messages()) >= BURST_SCHEDULES, "every message sent")

    assert set(run_pairs(engine).values()) == {1}
    messages = procs.messages()
    assert len(messages) == BURST_SCHEDULES
    assert set(messages.values()) == {1}
    assert orphans <= set(messages)
    assert any("sweeper re-enqueued" in procs.log(s) for s in survivors)


def run_state(engine: Engine, run_id: str) -> tuple[str, int]:
    with unit_of_work(engine) as session:
        run = session.get_one(Run, run_id)
        return run.state, run.attempts


def one_scheduled_run(engine: Engine, procs: Processes, **env: str) -> str:
    """Start a scheduler and let it fire one due schedule; returns the run id."""
    with unit_of_work(engine) as session:
        due_schedule(session)
    procs.start("scheduler", **env)
    wait_for(lambda: all_enqueued(engine, 1), "the run enqueued")
    with unit_of_work(engine) as session:
        return session.scalars(select(Run.id)).one()


def test_worker_killed_mid_actor_run_is_recovered_and_completes_once(
    engine: Engine, procs: Processes
) -> None:
    env = {
        "NEWSMON_RUN_LEASE_SECONDS": "3",
        "NEWSMON_TEST_RUN_STEP": "tests.support.steps:blocking_step",
    }
    run_id = one_scheduled_run(engine, procs, **env)
    doomed = procs.start("worker", **env)
    wait_for(lambda: run_state(engine, run_id) == ("running", 1), "the first attempt")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()

    procs.start("worker", **env)  # the scheduler's sweeper requeues it after the lease
    wait_for(lambda: run_state(engine, run_id)[0] == "succeeded", "the run to complete")
    time.sleep(0.5)
    assert run_state(engine, run_id) == ("succeeded", 2)
    assert steps.executions(engine, run_id) == 1


def lease_expired(engine: Engine, run_id: str) -> bool:
    with unit_of_work(engine) as session:
        lease = session.get_one(Run, run_id).leaseUntil
        return lease is not None and lease < database_now(session)


def test_killed_worker_message_is_redelivered_by_the_broker_heartbeat(
    engine: Engine, procs: Processes
) -> None:
    """No sweeper here (the scheduler is gone): only dramatiq's requeue of a dead
    worker's unacked messages brings the run back."""
    env = {
        "NEWSMON_RUN_LEASE_SECONDS": "2",
        "NEWSMON_TEST_RUN_STEP": "tests.support.steps:blocking_step",
    }
    run_id = one_scheduled_run(engine, procs, **env)
    scheduler = procs.started[-1]
    scheduler.kill()
    scheduler.wait()
    doomed = procs.start("worker", **env)
    wait_for(lambda: run_state(engine, run_id) == ("running", 1), "the first attempt")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    with redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB) as client:
        # Held (unacked) by the dead worker: its body is kept, its id is off the queue.
        assert client.llen(f"{procs.namespace}:fetch") == 0
        assert client.hlen(f"{procs.namespace}:fetch.msgs") == 1
    # The claim must find the lease expired; the heartbeat (1 s) is stale by then too.
    wait_for(lambda: lease_expired(engine, run_id), "the first attempt's lease to end")

    survivor = procs.start("worker", NEWSMON_TEST_BROKER_HEARTBEAT_MS="1000", **env)
    wait_for(lambda: run_state(engine, run_id)[0] == "succeeded", "the run to complete")
    time.sleep(0.5)
    assert run_state(engine, run_id) == ("succeeded", 2)
    assert steps.executions(engine, run_id) == 1
    assert "sweeper" not in "".join(procs.log(p) for p in procs.started if p is not survivor)


def test_worker_stops_gracefully_on_sigterm_finishing_its_run(
    engine: Engine, procs: Processes
) -> None:
    env = {"NEWSMON_TEST_RUN_STEP": "tests.support.steps:slow_step"}
    run_id = one_scheduled_run(engine, procs)
    worker = procs.start("worker", **env)
    wait_for(lambda: run_state(engine, run_id) == ("running", 1), "the run in flight")
    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=WAIT_S) == 0
    assert run_state(engine, run_id) == ("succeeded", 1)
    assert steps.executions(engine, run_id) == 1
    assert "worker stopped" in procs.log(worker)
