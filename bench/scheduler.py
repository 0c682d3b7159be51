"""Scheduler and pipeline benchmark on a fresh PostgreSQL database and the real Redis.

Run: .venv/bin/python -m bench.scheduler [--schedules 100000] [--burst 20000]

Scenarios, each with 1 and 3 scheduler replicas (processes with their own engines,
enqueueing into Redis db 3 under a namespace of their own; db 9 belongs to the tests,
which flush it):
  burst    ``--burst`` schedules due at one instant among ``--schedules``;
  backlog  all ``--schedules`` due at once (random-minute crons: a long outage).
Prints runs/s and enqueue lag (enqueuedAt - scheduledFor) p50/p99/max, then the run
pipeline's throughput against a dramatiq no-op actor on the same broker (ratio).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import secrets
import threading
import time
from datetime import datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from sqlalchemy import Engine, delete, func, insert, select, text, update

from core.config import Settings
from core.db.models import News, Organization, Run, Schedule
from core.db.session import WORKER_ENGINE_OPTIONS, make_engine, unit_of_work
from core.ids import new_id
from core.scheduling.fire import FIRE_BATCH_SIZE, database_now
from tests.support.databases import fresh_pg_database
from workers.broker import FETCH_QUEUE, build_broker

#: Redis database of the benchmark (not 9: the test suite flushes that one).
REDIS_URL = os.environ.get("NEWSMON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
#: Seconds between a replica's ticks by default: the production default
#: (``NEWSMON_SCHEDULER_TICK_SECONDS``); the loop wakes at the burst's instant anyway.
TICK_S = 5.0
#: The burst is due this long after the schedules are updated to it, so every replica
#: has ticked at least once in between and knows of it.
LEAD_S = 3.0
#: Seconds a replica process may take to start and tick once.
REPLICA_START_S = 60
#: Channel key of the benchmark's settings (no channel secret is ever sealed with it).
BENCH_KEY = "A" * 43
#: Messages / runs of the pipeline overhead measurement.
PIPELINE_RUNS = 2000


def _settings(url: str) -> Settings:
    """Production-mode settings (production refuses to start without a channel key)."""
    return Settings(database_url=url, broker_url=REDIS_URL, encryption_keys=BENCH_KEY)


def populate(engine: Engine, count: int) -> list[str]:
    orgs = [{"id": new_id(), "name": f"Org {i}", "slug": f"org-{i}"} for i in range(100)]
    news = [
        {"id": new_id(), "organizationId": orgs[i % 100]["id"], "name": f"s{i}", "searchQuery": {}}
        for i in range(count // 10)
    ]
    far = datetime(2100, 1, 1).astimezone()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "organizationId": news[i % len(news)]["organizationId"],
            "newsId": news[i % len(news)]["id"],
            "cronExpr": f"{random.randrange(60)} * * * *",
            "nextRun": far,
        }
        for i in range(count)
    ]
    with unit_of_work(engine) as session:
        session.execute(insert(Organization), orgs)
        session.execute(insert(News), news)
        for start in range(0, count, 10_000):
            session.execute(insert(Schedule), rows[start : start + 10_000])
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    return [r["id"] for r in rows]


def replica(url: str, namespace: str, tick_s: float, batch: int, ready: Any, stop: MpEvent) -> None:
    """One scheduler replica: its own engine and broker connection, running the
    production loop (``Scheduler.run_forever``) until stop."""
    import threading
    from functools import partial

    from scheduler.loop import Scheduler
    from workers.runs import enqueue_runs

    engine = make_engine(url)
    broker = build_broker(_settings(url), namespace=namespace)
    sched = Scheduler(engine, partial(enqueue_runs, broker), batch_size=batch)
    sched.tick()
    ready.release()
    stopping = threading.Event()
    loop = threading.Thread(target=sched.run_forever, args=(stopping, tick_s))
    loop.start()
    stop.wait()
    stopping.set()
    loop.join()


def wait_enqueued(engine: Engine, instant: datetime, expected: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with unit_of_work(engine) as session:
            done = session.scalar(
                select(func.count())
                .select_from(Run)
                .where(Run.scheduledFor == instant, Run.enqueuedAt.is_not(None))
            )
        if done is not None and done >= expected:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{done}/{expected} runs enqueued")


def measure(
    engine: Engine, url: str, ids: list[str], replicas: int, tick_s: float, batch: int
) -> dict[str, float]:
    namespace = f"newsmon-bench-{secrets.token_hex(4)}"
    ctx = mp.get_context("spawn")
    ready = ctx.Semaphore(0)
    stop = ctx.Event()
    procs = [
        ctx.Process(target=replica, args=(url, namespace, tick_s, batch, ready, stop))
        for _ in range(replicas)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        if not ready.acquire(timeout=REPLICA_START_S):
            for proc in procs:
                proc.kill()
            raise RuntimeError("a replica did not start (see its traceback above)")
    with unit_of_work(engine) as session:
        instant = database_now(session) + timedelta(seconds=tick_s + LEAD_S)
        for start in range(0, len(ids), 10_000):
            session.execute(
                update(Schedule)
                .where(Schedule.id.in_(ids[start : start + 10_000]))
                .values(nextRun=instant)
            )
    with unit_of_work(engine) as session:
        if database_now(session) > instant - timedelta(seconds=tick_s):
            print("warning: the burst was set up late; lag may include one tick")
    wait_enqueued(engine, instant, len(ids))
    stop.set()
    for proc in procs:
        proc.join()
    with unit_of_work(engine) as session:
        # Only the fires of ``instant``: a random-minute cron may legitimately fire
        # again at its own minute while the scenario runs.
        rows = session.execute(
            select(Run.scheduledFor, Run.enqueuedAt).where(Run.scheduledFor == instant)
        ).all()
        session.execute(delete(Run))
        far = datetime(2100, 1, 1).astimezone()
        session.execute(update(Schedule).values(nextRun=far))
    with redis.Redis.from_url(REDIS_URL) as client:
        messages = client.llen(f"{namespace}:{FETCH_QUEUE}")
        for key in client.scan_iter(f"{namespace}*"):
            client.delete(key)
    enqueued = [(s, e) for s, e in rows if e is not None]
    lags = sorted((e - s).total_seconds() for s, e in enqueued)
    span = max(e for _, e in enqueued) - instant
    return {
        "runs": len(rows),
        "messages": messages,
        "runs_s": len(rows) / max(span.total_seconds(), 1e-3),
        "min": lags[0],
        "p50": lags[len(lags) // 2],
        "p99": lags[int(len(lags) * 0.99)],
        "max": lags[-1],
    }


class Processed(dramatiq.Middleware):
    """Counts messages whose actor returned: the same finish line for both actors, read
    without a query (polling the database would load the worker it measures)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self.count += 1


def pipeline_ratio(url: str) -> dict[str, float]:
    """Runs/s of the run actor (claim, no-op step, outcome) vs a dramatiq no-op actor."""
    from core.scheduling.fire import fire_due_schedules
    from workers.pipeline import build_pipeline
    from workers.runs import enqueue_runs

    settings = _settings(url)
    engine = make_engine(url, **WORKER_ENGINE_OPTIONS)  # the actors' engine, as `newsmon worker`

    def drain(broker: dramatiq.Broker, expected: int) -> float:
        processed = Processed()
        broker.add_middleware(processed)
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_threads=8, worker_timeout=100)
        start = time.perf_counter()
        worker.start()
        while processed.count < expected:
            time.sleep(0.001)
        elapsed = time.perf_counter() - start
        worker.stop()
        broker.close()
        return elapsed

    noop_broker = build_broker(settings, namespace=f"newsmon-bench-{secrets.token_hex(4)}")

    @dramatiq.actor(broker=noop_broker, queue_name=FETCH_QUEUE)
    def noop(_: str) -> None:
        pass

    for i in range(PIPELINE_RUNS):
        noop.send(str(i))
    noop_s = drain(noop_broker, PIPELINE_RUNS)

    run_broker = build_broker(settings, namespace=f"newsmon-bench-{secrets.token_hex(4)}")
    build_pipeline(settings, engine, run_step=lambda session, run, now: {}, broker=run_broker)
    with unit_of_work(engine) as session:
        now = database_now(session)
        session.execute(update(Schedule).values(nextRun=now, cronExpr="0 0 1 1 *"))
    run_ids: list[str] = []
    while True:
        with unit_of_work(engine) as session:
            batch, claimed = fire_due_schedules(session, now=now)
        run_ids += batch
        if len(run_ids) >= PIPELINE_RUNS or not claimed:
            break
    run_ids = run_ids[:PIPELINE_RUNS]
    enqueue_runs(run_broker, run_ids)
    run_s = drain(run_broker, len(run_ids))
    with unit_of_work(engine) as session:
        succeeded = session.scalar(
            select(func.count()).select_from(Run).where(Run.state == "succeeded")
        )
    engine.dispose()
    if succeeded != len(run_ids):
        raise RuntimeError(f"only {succeeded} of {len(run_ids)} runs succeeded")
    return {
        "noop_per_s": PIPELINE_RUNS / noop_s,
        "run_per_s": len(run_ids) / run_s,
        "ratio": run_s / noop_s,
        "overhead_ms": (run_s - noop_s) / len(run_ids) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--schedules", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument(
        "--scenario", choices=("burst", "backlog"), action="append", help="default: both"
    )
    parser.add_argument("--replicas", type=int, action="append", help="default: 1 and 3")
    parser.add_argument("--tick", type=float, default=TICK_S, help="replica tick (s)")
    parser.add_argument("--batch", type=int, default=FIRE_BATCH_SIZE, help="claims per txn")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the actor ratio")
    parser.add_argument(
        "--pipeline-only", action="store_true", help="only the actor ratio (on as many schedules)"
    )
    args = parser.parse_args()
    if args.pipeline_only:
        args.schedules, args.scenario = PIPELINE_RUNS, []
    random.seed(7)
    with fresh_pg_database() as url:
        engine = make_engine(url)
        t0 = time.perf_counter()
        ids = populate(engine, args.schedules)
        print(f"{args.schedules:,} schedules created in {time.perf_counter() - t0:.1f}s")
        print(f"batch {args.batch}, tick {args.tick}s or at the next fire")
        print("lag = enqueuedAt - scheduledFor, seconds")
        header = f"{'scenario':<10}{'replicas':>9}{'runs':>9}{'msgs':>9}{'runs/s':>9}"
        print(header + f"{'min':>8}{'p50':>8}{'p99':>8}{'max':>8}")
        scenarios = {"burst": random.sample(ids, min(args.burst, len(ids))), "backlog": ids}
        for name in list(scenarios) if args.scenario is None else args.scenario:
            chosen = scenarios[name]
            for replicas in args.replicas or (1, 3):
                r = measure(engine, url, chosen, replicas, args.tick, args.batch)
                print(
                    f"{name:<10}{replicas:>9}{r['runs']:>9,}{r['messages']:>9,}"
                    f"{r['runs_s']:>9,.0f}{r['min']:>8.2f}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['max']:>8.2f}"
                )
        if args.no_pipeline:
            engine.dispose()
            return
        p = pipeline_ratio(url)
        print(
            f"pipeline: dramatiq no-op actor {p['noop_per_s']:,.0f} msg/s, run actor "
            f"{p['run_per_s']:,.0f} runs/s: {p['run_per_s'] / p['noop_per_s']:.2f}x the no-op "
            f"rate (goal >= 0.30x), +{p['overhead_ms']:.2f} ms per run"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
