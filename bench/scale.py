"""The whole pipeline at scale: a feed farm, 10,000 then 100,000 searches, real processes.

Run: .venv/bin/python -m bench.scale [--searches 10000,100000] [--duration 180]
     [--warmup 30] [--workers 2] [--threads 4] [--sources N] [--farm-processes 2]

For each size, on a dedicated PostgreSQL database (``--database``, created and dropped
here; never the tests' database) and Redis database ``--redis-db`` (13 by default,
under a namespace of its own, deleted afterwards):

1. a local feed farm (:mod:`bench.scale_farm`: ``--sources`` feeds, 20,000 at most, on a
   few hundred loopback hosts, realistic publishing rates, some slow, failing or huge)
   and a webhook receiver start;
2. the database is seeded in steady state with COPY (:mod:`bench.scale_seed`): shared
   sources already fetched, searches across organizations of 10, schedules from every
   minute to hourly, one webhook channel per organization;
3. one ``newsmon scheduler`` and ``--workers`` ``newsmon worker`` processes run (the
   production commands, unchanged) for ``--warmup`` + ``--duration`` seconds.

Measured over the ``--duration`` window and printed per size, then side by side:
fetches/s (farm requests; refreshes stored), runs/s, schedule lag p50/p99 (scheduler:
``enqueuedAt - scheduledFor``; start: ``startedAt - scheduledFor``, a run not started by
the end counted at its wait so far), publication-to-delivery p50/p99 at the receiver
(items published after the processes started; by cron class, since a search that runs
hourly cannot deliver within a few minutes), deliveries/s, database connections in use
(max of 2 s samples), worker RSS, and where the CPU went (workers, scheduler, PostgreSQL
backends, farm, receiver; the whole machine's busy share, since it is shared).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, text

from bench import scale_farm as farm
from bench.scale_seed import Seeded, seed
from core.db.session import make_engine
from core.secrets import generate_key_string
from tests.support.databases import fresh_pg_database

#: PostgreSQL server (trust auth) the bench creates its database on.
PG_ADMIN_URL = os.environ.get(
    "NEWSMON_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: Sources per search when ``--sources`` is not given, and their most.
SEARCHES_PER_SOURCE = 5
MAX_SOURCES = 20_000
#: Seconds between samples of connections, memory and CPU.
SAMPLE_S = 2.0
#: Seconds a process may take to start, and to stop after SIGTERM.
START_S = 180.0
STOP_S = 40.0
#: Age of the farm's first items: enough history for daily feeds to fill a document.
FARM_HISTORY_S = 60 * 86400
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Size:
    searches: int
    sources: int
    workers: int
    threads: int
    duration: float
    warmup: float
    farm_processes: int
    database: str
    redis_db: int
    start_due: bool = False
    profile_runs: int = 0


@dataclass
class Result:
    size: Size
    seeded: Seeded
    seed_s: float
    figures: dict[str, Any] = field(default_factory=dict)


# --- processes ---------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@contextmanager
def local_internet(
    feeds: int, epoch: float, processes: int
) -> Iterator[tuple[dict[int, int], str, list[int]]]:
    """The farm (``processes`` uvicorn processes sharing the hosts) and the receiver;
    yields every host's port, the receiver's URL and the pids."""
    ctx = mp.get_context("spawn")
    hosts = farm.host_count(feeds)
    ports_out: Any = ctx.Queue()
    ports_in = [ctx.Queue() for _ in range(processes)]
    procs = [
        ctx.Process(
            target=farm.serve_farm,
            args=(feeds, epoch, list(range(n, hosts, processes)), ports_out, ports_in[n]),
            daemon=True,
        )
        for n in range(min(processes, hosts))
    ]
    receiver_port: Any = ctx.Queue()
    procs.append(ctx.Process(target=farm.serve_receiver, args=(receiver_port,), daemon=True))
    try:
        for proc in procs:
            proc.start()
        ports: dict[int, int] = {}
        for _ in procs[:-1]:
            ports.update(ports_out.get(timeout=START_S))
        for queue in ports_in[: len(procs) - 1]:
            queue.put(ports)
        receiver = f"http://127.0.0.1:{receiver_port.get(timeout=START_S)}/hook"
        _wait_http(receiver.replace("/hook", "/_records"))
        for host in range(min(processes, len(ports))):
            _wait_http(f"http://{farm.host_address(host)}:{ports[host]}/_stats")
        yield ports, receiver, [p.pid for p in procs if p.pid is not None]
    finally:
        for proc in procs:
            proc.kill()
            proc.join(5)


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + START_S
    while True:
        try:
            httpx.get(url, timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def farm_stats(ports: dict[int, int], processes: int) -> dict[str, int]:
    """Summed request counters of the farm processes (one host of each)."""
    total: dict[str, int] = {}
    for n in range(min(processes, len(ports))):  # host n is served by farm process n
        url = f"http://{farm.host_address(n)}:{ports[n]}/_stats"
        for key, value in httpx.get(url, timeout=10).json().items():
            total[key] = total.get(key, 0) + value
    return total


def receiver_records(receiver: str) -> list[tuple[float, str, str | None]]:
    rows = httpx.get(receiver.replace("/hook", "/_records"), timeout=30).json()
    return [(float(r[0]), str(r[1]), r[2]) for r in rows]


def newsmon_env(url: str, redis_db: int, namespace: str, key: str, threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env.update(
        {
            "NEWSMON_DATABASE_URL": url,
            "NEWSMON_BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "NEWSMON_ENCRYPTION_KEYS": key,
            "NEWSMON_FETCH_ALLOWLIST": "127.0.0.0/8",
            "NEWSMON_WORKER_THREADS": str(threads),
            "NEWSMON_LOG_LEVEL": os.environ.get("NEWSMON_BENCH_LOG_LEVEL", "WARNING"),
            "NEWSMON_PRUNE_INTERVAL_MINUTES": "0",
            # A test hook of the CLI: this bench's own Redis keys, deleted afterwards.
            "NEWSMON_TEST_BROKER_NAMESPACE": namespace,
        }
    )
    return env


def newsmon_command() -> list[str]:
    script = Path(sys.executable).with_name("newsmon")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


@contextmanager
def newsmon_processes(
    env: dict[str, str], workers: int, log_dir: Path
) -> Iterator[dict[str, list[int]]]:
    """One scheduler and ``workers`` worker processes; stopped with SIGTERM afterwards."""
    procs: dict[str, list[subprocess.Popen[bytes]]] = {"scheduler": [], "worker": []}
    logs = []
    try:
        for role, count in (("worker", workers), ("scheduler", 1)):
            for n in range(count):
                log = (log_dir / f"{role}-{n}.log").open("wb")
                logs.append(log)
                procs[role].append(
                    subprocess.Popen([*newsmon_command(), role], env=env, stdout=log, stderr=log)
                )
        yield {role: [p.pid for p in ps] for role, ps in procs.items()}
    finally:
        everyone = [p for ps in procs.values() for p in ps]
        for proc in everyone:
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in everyone:
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def wait_for_workers(redis_db: int, namespace: str, workers: int) -> None:
    """Until every worker process consumes (dramatiq's heartbeats in Redis)."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    deadline = time.monotonic() + START_S
    while client.zcard(f"{namespace}:__heartbeats__") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start (see their logs)")
        time.sleep(0.2)
    client.close()


def delete_namespace(redis_db: int, namespace: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        client.delete(key)
    client.close()


# --- measurement ---------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Sampler:
    """Connections, memory and CPU of everything taking part, every :data:`SAMPLE_S`."""

    def __init__(self, engine: Engine, database: str, pids: dict[str, list[int]]) -> None:
        self.engine = engine
        self.database = database
        self.pids = pids
        self.connections: list[int] = []
        self.active: list[int] = []
        self.worker_rss: list[float] = []
        self.scheduler_rss: list[float] = []
        self.backends: set[int] = set()

    def sample(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid, state FROM pg_stat_activity"
                    " WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": self.database},
            ).all()
        self.backends.update(pid for pid, _ in rows)
        self.connections.append(len(rows))
        self.active.append(sum(1 for _, state in rows if state != "idle"))
        self.worker_rss.append(sum(_rss_mb(pid) for pid in self.pids["worker"]))
        self.scheduler_rss.append(sum(_rss_mb(pid) for pid in self.pids["scheduler"]))

    def cpu(self) -> dict[str, float]:
        out = {role: sum(_cpu_s(pid) for pid in pids) for role, pids in self.pids.items()}
        out["postgres"] = sum(_cpu_s(pid) for pid in self.backends)
        return out


def window_figures(engine: Engine, start: datetime, end: datetime) -> dict[str, Any]:
    """What the database says happened between ``start`` and ``end``."""
    with engine.connect() as conn:
        lags = conn.execute(
            text(
                """SELECT EXTRACT(EPOCH FROM "enqueuedAt" - "scheduledFor"),
                          EXTRACT(EPOCH FROM COALESCE("startedAt", :end) - "scheduledFor"),
                          "startedAt" IS NULL
                   FROM runs WHERE "trigger" = 'schedule'
                   AND "scheduledFor" >= :start AND "scheduledFor" < :end"""
            ),
            {"start": start, "end": end},
        ).all()
        finished = conn.execute(
            text(
                """SELECT state, count(*),
                          percentile_disc(0.5) WITHIN GROUP (ORDER BY "finishedAt" - "startedAt"),
                          percentile_disc(0.99) WITHIN GROUP (ORDER BY "finishedAt" - "startedAt")
                   FROM runs WHERE "finishedAt" >= :start AND "finishedAt" < :end GROUP BY state"""
            ),
            {"start": start, "end": end},
        ).all()
        empty = conn.scalar(
            text(
                """SELECT count(*) FROM runs WHERE state = 'succeeded'
                   AND "finishedAt" >= :start AND "finishedAt" < :end
                   AND COALESCE((stats->>'candidates')::int, 0) = 0"""
            ),
            {"start": start, "end": end},
        )
        fetched = conn.scalar(
            text(
                "SELECT count(*) FROM sources"
                ' WHERE "lastFetchedAt" >= :start AND "lastFetchedAt" < :end'
            ),
            {"start": start, "end": end},
        )
        overdue = conn.scalar(
            text(
                """SELECT count(*) FROM sources
                   WHERE "nextFetchAt" < :end - interval '60 seconds'"""
            ),
            {"end": end},
        )
        failing = conn.scalar(text("SELECT count(*) FROM sources WHERE status = 'failing'"))
        backlog = conn.scalar(text("SELECT count(*) FROM runs WHERE state = 'queued'"))
        sent = conn.scalar(
            text(
                """SELECT count(*) FROM deliveries WHERE "sentAt" >= :start AND "sentAt" < :end"""
            ),
            {"start": start, "end": end},
        )
        deliveries: dict[str, int] = dict(
            conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state")).all()
        )
        entries_new = conn.scalar(
            text('SELECT count(*) FROM entries WHERE "createdAt" >= :start AND "createdAt" < :end'),
            {"start": start, "end": end},
        )
    seconds = (end - start).total_seconds()
    enqueue_lag = [float(r[0]) for r in lags if r[0] is not None]
    start_lag = [float(r[1]) for r in lags]
    done = {state: count for state, count, _, _ in finished}
    durations = {state: (p50, p99) for state, _, p50, p99 in finished}
    ok = durations.get("succeeded", (None, None))
    return {
        "runs_fired": len(lags),
        "runs_per_s": sum(done.values()) / seconds,
        "runs_failed": done.get("failed", 0),
        "runs_nothing_new_share": (empty or 0) / max(1, done.get("succeeded", 0)),
        "run_s_p50": ok[0].total_seconds() if ok[0] is not None else None,
        "run_s_p99": ok[1].total_seconds() if ok[1] is not None else None,
        "enqueue_lag_p50": pct(enqueue_lag, 0.5),
        "enqueue_lag_p99": pct(enqueue_lag, 0.99),
        "start_lag_p50": pct(start_lag, 0.5),
        "start_lag_p99": pct(start_lag, 0.99),
        "runs_not_started": sum(1 for r in lags if r[2]),
        "runs_queued_at_end": backlog,
        "refreshes_stored_per_s": (fetched or 0) / seconds,
        "sources_overdue_at_end": overdue,
        "sources_failing_at_end": failing,
        "entries_new": entries_new,
        "deliveries_per_s": (sent or 0) / seconds,
        "deliveries_by_state": deliveries,
    }


def latency_figures(
    records: list[tuple[float, str, str | None]], seeded: Seeded, since: float, end: float
) -> dict[str, Any]:
    """Publication to receipt of stories published after ``since`` and received by ``end``."""
    by_class: dict[str, list[float]] = {}
    for received, news_id, published in records:
        if published is None or received > end:
            continue
        at = datetime.fromisoformat(published).timestamp()
        if at < since:
            continue
        by_class.setdefault(seeded.cron_class.get(news_id, "?"), []).append(received - at)
    every = [v for values in by_class.values() for v in values]
    out: dict[str, Any] = {
        "stories_delivered": len(every),
        "latency_p50": pct(every, 0.5),
        "latency_p99": pct(every, 0.99),
    }
    for label, values in sorted(by_class.items()):
        out[f"latency_{label}"] = (len(values), pct(values, 0.5), pct(values, 0.99))
    return out


def measure(size: Size, log_dir: Path) -> Result:
    now = time.time()
    epoch = now - FARM_HISTORY_S
    key = generate_key_string()
    namespace = f"newsmon-scale-{secrets.token_hex(4)}"
    with (
        local_internet(size.sources, epoch, size.farm_processes) as (ports, receiver, farm_pids),
        fresh_pg_database(name=size.database, admin_url=PG_ADMIN_URL) as url,
    ):
        engine = make_engine(url, pool_size=2)
        t0 = time.monotonic()
        seeded = seed(
            engine,
            searches=size.searches,
            feeds=size.sources,
            epoch=epoch,
            ports=ports,
            receiver_url=receiver,
            channel_key=key,
            now=datetime.now(UTC),
            start_due=size.start_due,
        )
        result = Result(size, seeded, time.monotonic() - t0)
        print(
            f"  seeded {seeded.searches} searches, {seeded.sources} sources, "
            f"{seeded.links} links, {seeded.entries} entries in {result.seed_s:.0f} s",
            flush=True,
        )
        env = newsmon_env(url, size.redis_db, namespace, key, size.threads)
        try:
            with newsmon_processes(env, size.workers, log_dir) as pids:
                wait_for_workers(size.redis_db, namespace, size.workers)
                started = time.time()
                everyone = {**pids, "farm": farm_pids[:-1], "receiver": farm_pids[-1:]}
                sampler = Sampler(engine, size.database, everyone)
                _sleep_sampling(sampler, size.warmup)
                cpu0, busy0, farm0 = (
                    sampler.cpu(),
                    _machine_busy(),
                    farm_stats(ports, size.farm_processes),
                )
                w_start = datetime.now(UTC)
                sampler.connections.clear()
                sampler.active.clear()
                _sleep_sampling(sampler, size.duration)
                w_end = datetime.now(UTC)
                cpu1, busy1, farm1 = (
                    sampler.cpu(),
                    _machine_busy(),
                    farm_stats(ports, size.farm_processes),
                )
                records = receiver_records(receiver)
                seconds = (w_end - w_start).total_seconds()
                fig = result.figures
                fig["window_s"] = seconds
                requests = farm1.get("requests", 0) - farm0.get("requests", 0)
                fig["fetches_per_s"] = requests / seconds
                fig["fetch_statuses"] = {
                    k: farm1[k] - farm0.get(k, 0)
                    for k in sorted(farm1)
                    if ":" in k and farm1[k] - farm0.get(k, 0)
                }
                fig["farm_mb_per_s"] = (
                    (farm1.get("bytes", 0) - farm0.get("bytes", 0)) / seconds / 1e6
                )
                fig.update(window_figures(engine, w_start, w_end))
                fig.update(latency_figures(records, seeded, started, w_end.timestamp()))
                fig["db_connections_max"] = max(sampler.connections, default=0)
                fig["db_connections_p50"] = pct([float(c) for c in sampler.connections], 0.5)
                fig["db_active_max"] = max(sampler.active, default=0)
                fig["worker_rss_mb_max"] = max(sampler.worker_rss, default=0.0)
                fig["worker_rss_mb_each"] = fig["worker_rss_mb_max"] / max(1, size.workers)
                fig["scheduler_rss_mb_max"] = max(sampler.scheduler_rss, default=0.0)
                fig["cpu_cores"] = {k: (cpu1[k] - cpu0.get(k, 0.0)) / seconds for k in cpu1}
                fig["machine_busy"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
                fig["load_avg"] = os.getloadavg()[0]
            result.figures.update(time_scheduler_queries(engine))
            if size.profile_runs:
                result.figures["profile"] = profile_runs(engine, size.profile_runs)
        finally:
            engine.dispose()
            delete_namespace(size.redis_db, namespace)
    return result


def profile_runs(engine: Engine, count: int) -> str:
    """The run step of ``count`` random searches in this process under cProfile, each
    rolled back (what their next runs would do): where a run's time goes."""
    import cProfile
    import io
    import pstats

    from sqlalchemy.orm import Session

    from core.ingest.step import find_stories
    from core.scheduling.runs import ClaimedRun

    with engine.connect() as conn:
        picked = conn.execute(
            text('SELECT "organizationId", id FROM news ORDER BY random() LIMIT :n'), {"n": count}
        ).all()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    for organization_id, news_id in picked:
        now = datetime.now(UTC)
        run = ClaimedRun("profile", organization_id, news_id, None, 1, now)
        with Session(engine) as session:
            profiler.enable()
            find_stories(session, run, now)
            profiler.disable()
            session.rollback()
    elapsed = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    per_run = elapsed / max(1, len(picked)) * 1000
    return f"{len(picked)} runs, {per_run:.1f} ms each (wall, in-process)\n{out.getvalue()}"


def time_scheduler_queries(engine: Engine) -> dict[str, float]:
    """Milliseconds of the scheduler's two "what is due" queries on this database (each in
    a transaction rolled back): due schedules (no fire is written) and due sources."""
    from sqlalchemy.orm import Session

    from core.ingest.source_clock import sources_to_refresh
    from core.scheduling.fire import database_now, seconds_until_next_fire

    out = {}
    with Session(engine) as session:
        now = database_now(session)
        started = time.perf_counter()
        sources_to_refresh(session, now=now)
        out["due_sources_ms"] = (time.perf_counter() - started) * 1000
        session.rollback()
        started = time.perf_counter()
        session.execute(
            text(
                """SELECT s.id FROM schedules s JOIN news n ON n.id = s."newsId"
                   JOIN organizations o ON o.id = s."organizationId"
                   WHERE s."isActive" AND n."isActive" AND o."isActive" AND s."nextRun" <= now()
                   ORDER BY s."nextRun" LIMIT 1000 FOR UPDATE OF s SKIP LOCKED"""
            )
        ).all()
        out["due_schedules_ms"] = (time.perf_counter() - started) * 1000
        session.rollback()
        started = time.perf_counter()
        seconds_until_next_fire(session)
        out["next_fire_ms"] = (time.perf_counter() - started) * 1000
        session.rollback()
    return out


def _sleep_sampling(sampler: Sampler, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sampler.sample()
        time.sleep(max(0.0, min(SAMPLE_S, end - time.monotonic())))


# --- report --------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, tuple):
        return "/".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return f"{value:,}" if isinstance(value, int) else str(value)


#: Rows of the side-by-side table: (label, figure key).
ROWS = (
    ("fetches/s (farm requests)", "fetches_per_s"),
    ("refreshes stored/s", "refreshes_stored_per_s"),
    ("runs/s (finished)", "runs_per_s"),
    ("runs fired in window", "runs_fired"),
    ("schedule lag p50 s (enqueue)", "enqueue_lag_p50"),
    ("schedule lag p99 s (enqueue)", "enqueue_lag_p99"),
    ("start lag p50 s", "start_lag_p50"),
    ("start lag p99 s", "start_lag_p99"),
    ("runs queued at end", "runs_queued_at_end"),
    ("runs with no candidate (share)", "runs_nothing_new_share"),
    ("run duration p50 s", "run_s_p50"),
    ("run duration p99 s", "run_s_p99"),
    ("publication->delivery p50 s", "latency_p50"),
    ("publication->delivery p99 s", "latency_p99"),
    ("  1-min searches (n/p50/p99)", "latency_1min"),
    ("  5-min searches (n/p50/p99)", "latency_5min"),
    ("  15-min searches (n/p50/p99)", "latency_15min"),
    ("deliveries/s", "deliveries_per_s"),
    ("sources overdue >60 s at end", "sources_overdue_at_end"),
    ("scheduler due-sources query ms", "due_sources_ms"),
    ("scheduler due-schedules query ms", "due_schedules_ms"),
    ("DB connections max (p50)", "db_connections_max"),
    ("DB connections active max", "db_active_max"),
    ("worker RSS MB (all / each)", "worker_rss_mb_max"),
    ("scheduler RSS MB", "scheduler_rss_mb_max"),
    ("machine busy share", "machine_busy"),
)


def report(results: list[Result]) -> str:
    lines = []
    for r in results:
        s = r.size
        lines.append(
            f"== {s.searches:,} searches, {s.sources:,} sources ({r.seeded.organizations:,} orgs, "
            f"{r.seeded.links:,} links; crons {r.seeded.class_counts}), {s.workers} workers x "
            f"{s.threads} threads, {r.figures.get('window_s', 0):.0f} s window"
        )
        for key in ("fetch_statuses", "deliveries_by_state", "cpu_cores"):
            lines.append(f"   {key}: {_fmt(r.figures.get(key))}")
    header = f"{'':34}" + "".join(f"{r.size.searches:>16,}" for r in results)
    lines.append(header + ("      growth" if len(results) > 1 else ""))
    for label, key in ROWS:
        values = [r.figures.get(key) for r in results]
        if key == "db_connections_max":
            cells = [
                f"{_fmt(v)} ({_fmt(r.figures.get('db_connections_p50'))})"
                for v, r in zip(values, results, strict=True)
            ]
        elif key == "worker_rss_mb_max":
            cells = [
                f"{_fmt(v)} / {_fmt(r.figures.get('worker_rss_mb_each'))}"
                for v, r in zip(values, results, strict=True)
            ]
        else:
            cells = [_fmt(v) for v in values]
        row = f"{label:34}" + "".join(f"{c:>16}" for c in cells)
        first, last = values[0], values[-1]
        if (
            len(results) > 1
            and isinstance(first, int | float)
            and isinstance(last, int | float)
            and first
        ):
            row += f"  {last / first:>9.2f}x"
        lines.append(row)
    return "\n".join(lines)


def sizes_from(args: argparse.Namespace) -> list[Size]:
    out = []
    for searches in (int(v) for v in args.searches.split(",")):
        sources = args.sources or min(MAX_SOURCES, max(20, searches // SEARCHES_PER_SOURCE))
        out.append(
            Size(
                searches,
                sources,
                args.workers,
                args.threads,
                args.duration,
                args.warmup,
                args.farm_processes,
                args.database,
                args.redis_db,
                args.start_due,
                args.profile_runs,
            )
        )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--searches", default="10000,100000", help="comma-separated sizes, run in turn"
    )
    parser.add_argument(
        "--sources",
        type=int,
        default=0,
        help=f"feeds (default searches/5, at most {MAX_SOURCES:,})",
    )
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds per size")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=2, help="newsmon worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--farm-processes", type=int, default=2, help="feed farm processes")
    parser.add_argument("--database", default="newsmon_scale", help="database created and dropped")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database index")
    parser.add_argument(
        "--start-due",
        action="store_true",
        help="every source and schedule due at start (a cold start after an outage)",
    )
    parser.add_argument(
        "--profile-runs",
        type=int,
        default=0,
        help="after the window, profile this many run steps in-process (printed)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--logs", type=Path, default=Path("/tmp/newsmon-scale"), help="process logs"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[Result]:
    args.logs.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes_from(args):
        print(f"-- {size.searches:,} searches over {size.sources:,} sources", flush=True)
        results.append(measure(size, args.logs))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = run(args)
    print(f"machine: {os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}")
    print(report(results))
    for r in results:
        if "profile" in r.figures:
            print(f"-- profile of run steps, {r.size.searches:,} searches:")
            print(r.figures["profile"])
    if args.json:
        args.json.write_text(
            json.dumps(
                [{"size": r.size.__dict__, "seed_s": r.seed_s, **r.figures} for r in results],
                default=str,
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
