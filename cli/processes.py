"""The long-running processes: web, scheduler, worker, everything in one (run), demo."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from cli.common import (
    TEST_BROKER_HEARTBEAT_ENV,
    TEST_BROKER_NAMESPACE_ENV,
    TEST_CRASH_AFTER_COMMIT_ENV,
    TEST_RUN_STEP_ENV,
    load,
    migrated_engine,
    stop_on_signals,
)
from core.config import Settings
from core.db.session import WORKER_ENGINE_OPTIONS
from core.errors import ConfigError

if TYPE_CHECKING:
    import dramatiq
    import uvicorn

    from scheduler.loop import Scheduler

log = logging.getLogger("newsmon")


# --- processes -------------------------------------------------------------------------


def _web_server(
    settings: Settings, engine: Engine, broker: dramatiq.Broker | None = None
) -> uvicorn.Server:
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(
        create_app(settings, engine, broker=broker),
        host=settings.web_host,
        port=settings.web_port,
        log_level=settings.log_level.lower(),
    )
    return uvicorn.Server(config)


def require_production(settings: Settings, command: str) -> None:
    if settings.mode != "production":
        raise ConfigError(
            "NEWSMON_BROKER_URL",
            f"`newsmon {command}` as its own process needs the Redis broker; "
            "embedded mode runs everything in `newsmon run`",
        )


def web(
    host: Annotated[
        str | None, typer.Option(help="Address to bind; default NEWSMON_WEB_HOST.")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to bind; default NEWSMON_WEB_PORT ($PORT)."),
    ] = None,
) -> None:
    """Serve the admin API, health and metrics."""
    settings = load()
    changes = {"web_host": host, "web_port": port}
    settings = settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
    _web_server(settings, migrated_engine(settings)).run()


def broker_for(settings: Settings) -> dramatiq.Broker:
    from dramatiq.brokers.redis import MAINTENANCE_SCALE

    from workers.broker import NAMESPACE, build_broker

    namespace = os.environ.get(TEST_BROKER_NAMESPACE_ENV) or NAMESPACE
    heartbeat_ms = os.environ.get(TEST_BROKER_HEARTBEAT_ENV)
    if heartbeat_ms:
        return build_broker(
            settings,
            namespace=namespace,
            heartbeat_timeout_ms=int(heartbeat_ms),
            maintenance_chance=MAINTENANCE_SCALE,  # maintenance on every command
        )
    return build_broker(settings, namespace=namespace)


def _crash_after_commit(_run_ids: list[str]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _scheduler_for(settings: Settings, engine: Engine, broker: dramatiq.Broker) -> Scheduler:
    from core.health.detect import HealthPolicy
    from core.ops.retention import RetentionPolicy
    from scheduler.loop import Scheduler
    from workers.broker import broker_lost_data
    from workers.deliver import DELIVERY_BATCH_SIZE, enqueue_deliveries
    from workers.health_alerts import enqueue_health_alerts
    from workers.refresh import enqueue_refreshes
    from workers.runs import enqueue_runs

    crash = os.environ.get(TEST_CRASH_AFTER_COMMIT_ENV) == "1"
    return Scheduler(
        engine,
        partial(enqueue_runs, broker),
        orphan_grace=timedelta(seconds=settings.orphan_grace_seconds),
        requeue_after=timedelta(seconds=settings.requeue_after_seconds),
        after_commit=_crash_after_commit if crash else None,
        enqueue_deliveries=partial(enqueue_deliveries, broker, batch_size=DELIVERY_BATCH_SIZE),
        retention=RetentionPolicy.from_settings(settings),
        prune_every=(
            timedelta(minutes=settings.prune_interval_minutes)
            if settings.prune_interval_minutes
            else None
        ),
        broker_lost=partial(broker_lost_data, broker),
        enqueue_refreshes=partial(enqueue_refreshes, broker),
        health=HealthPolicy.from_settings(settings),
        health_every=(
            timedelta(seconds=settings.health_check_interval_seconds)
            if settings.health_check_interval_seconds
            else None
        ),
        enqueue_health_alerts=partial(enqueue_health_alerts, broker),
    )


def _pipeline(settings: Settings, engine: Engine) -> dramatiq.Broker:
    from workers.pipeline import build_pipeline, load_run_step

    step_spec = os.environ.get(TEST_RUN_STEP_ENV)
    step = load_run_step(step_spec, setting=TEST_RUN_STEP_ENV) if step_spec else None
    return build_pipeline(settings, engine, run_step=step, broker=broker_for(settings))


def scheduler() -> None:
    """Run a scheduler replica (start as many as you like)."""
    settings = load()
    require_production(settings, "scheduler")
    engine = migrated_engine(settings)
    # Only the broker: a scheduler sends run messages and never imports what runs do.
    sched = _scheduler_for(settings, engine, broker_for(settings))
    stop = threading.Event()
    stop_on_signals(stop)
    log.info("scheduler started (tick %.1fs)", settings.scheduler_tick_seconds)
    sched.run_forever(
        stop, settings.scheduler_tick_seconds, on_tick=_heartbeat(settings, "scheduler")
    )
    log.info("scheduler stopped")


def worker() -> None:
    """Run a worker process (start as many as you like, on any machine)."""
    from workers.process import run_worker

    settings = load()
    require_production(settings, "worker")
    engine = migrated_engine(settings, **WORKER_ENGINE_OPTIONS)
    broker = _pipeline(settings, engine)
    stop = threading.Event()
    stop_on_signals(stop)
    run_worker(broker, settings.worker_threads, stop, heartbeat=_heartbeat(settings, "worker"))


def _heartbeat(settings: Settings, kind: str) -> Callable[[], None]:
    """Write the process's heartbeat (read by ``newsmon health``)."""
    from core.clock import utcnow
    from core.ops.heartbeat import beat, heartbeat_path

    path = heartbeat_path(settings.data_dir, kind)
    return lambda: beat(path, utcnow())


def run() -> None:
    """Run web, scheduler and worker in one process (embedded default: SQLite, no Redis).

    Ctrl-C stops it cleanly: the web server stops, in-flight runs finish, and anything
    unfinished is picked up again at the next start.
    """
    from workers.process import run_worker

    stop = threading.Event()
    servers: list[uvicorn.Server] = []

    def shut_down(*_: object) -> None:
        stop.set()
        for server in servers:
            server.should_exit = True

    # Installed before any thread starts: a Ctrl-C at any moment, before the web server
    # runs or the one uvicorn passes on after stopping, stops everything (uvicorn has its
    # own handlers only while it serves).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, shut_down)
    settings = load()
    engine = migrated_engine(settings)
    broker = _pipeline(settings, engine)
    sched = _scheduler_for(settings, engine, broker)
    if settings.mode == "embedded":
        recovered = sched.recover()
        if recovered:
            log.info("re-enqueued %d unfinished runs from the last session", recovered)
    threads = [
        threading.Thread(
            target=run_worker, args=(broker, settings.worker_threads, stop), name="worker"
        ),
        threading.Thread(
            target=sched.run_forever,
            args=(stop, settings.scheduler_tick_seconds),
            name="scheduler",
        ),
    ]
    try:
        for thread in threads:
            thread.start()
        log.info(
            "newsmon running (%s mode) on http://%s:%d",
            settings.mode,
            settings.web_host,
            settings.web_port,
        )
        # The in-process broker is shared, so "run now" reaches this process's worker.
        servers.append(_web_server(settings, engine, broker))
        if not stop.is_set():
            servers[0].run()  # blocks until SIGINT/SIGTERM
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join()
        log.info("newsmon stopped")


def demo() -> None:
    """Run the embedded system on a demo organization: feeds served on 127.0.0.1 (new
    items every 20 s, wire copies, URL variants, off-topic stories, an urgent one in
    quiet hours), a file channel and a webhook receiver."""
    from cli.demo import start_demo_server

    server = start_demo_server()
    # Only the demo server's own port: tenants made in another shell reach no other
    # local service through this process.
    allow = os.environ.get("NEWSMON_FETCH_ALLOWLIST", "")
    own = f"127.0.0.1:{server.server_address[1]}"
    os.environ["NEWSMON_FETCH_ALLOWLIST"] = ",".join(filter(None, [allow, own]))
    settings = load()
    if settings.mode != "embedded":
        raise ConfigError("NEWSMON_BROKER_URL", "the demo runs embedded; unset it")
    from cli.demo import set_up_demo

    set_up_demo(settings, migrated_engine(settings), server.base)
    run()
