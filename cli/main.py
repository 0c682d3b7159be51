"""``newsmon``: run the processes and administer tenants from the shell.

Every error a user can cause ends as one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import Engine

from core.clock import utcnow
from core.config import Settings, load_settings
from core.db import migrate
from core.db.session import check_connection, make_engine, unit_of_work
from core.errors import ConfigError, NewsmonError, NotFound
from core.logs import setup_logging

if TYPE_CHECKING:
    import dramatiq

    from scheduler.loop import Scheduler

app = typer.Typer(
    help="newsmon: multi-tenant news monitoring (scheduler, workers, admin API).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations (tenants).", no_args_is_help=True)
key_app = typer.Typer(help="API keys of organizations and operators.", no_args_is_help=True)
search_app = typer.Typer(help="Saved news searches.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(key_app, name="key")
app.add_typer(search_app, name="search")
dlq_app = typer.Typer(help="Dead-lettered messages (production broker).", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

log = logging.getLogger("newsmon")

# Test hooks: environment variables under NEWSMON_TEST_ are not settings (core/config.py
# ignores them) and are read here only, for the end-to-end tests of real processes.
#: ``module:function`` run step a worker uses instead of the default.
TEST_RUN_STEP_ENV = "NEWSMON_TEST_RUN_STEP"
#: ``1``: a scheduler SIGKILLs itself between a commit and its enqueue (fault test).
TEST_CRASH_AFTER_COMMIT_ENV = "NEWSMON_TEST_CRASH_AFTER_COMMIT"
#: Redis key namespace of the broker, so tests sharing one Redis stay apart.
TEST_BROKER_NAMESPACE_ENV = "NEWSMON_TEST_BROKER_NAMESPACE"
#: Milliseconds of the broker's heartbeat timeout, with maintenance on every command
#: (the test of dramatiq's own redelivery of a killed worker's messages).
TEST_BROKER_HEARTBEAT_ENV = "NEWSMON_TEST_BROKER_HEARTBEAT_MS"


def _settings() -> Settings:
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return settings


def _engine(settings: Settings) -> Engine:
    engine = make_engine(settings.sqlalchemy_url)
    check_connection(engine)
    return engine


def _migrated_engine(settings: Settings) -> Engine:
    """The database, migrated first in embedded mode (production migrates in ``release``)."""
    engine = _engine(settings)
    if settings.mode == "embedded":
        migrate.upgrade_if_needed(engine)
    elif migrate.current_revision(engine) is None:
        raise ConfigError(
            "NEWSMON_DATABASE_URL", "database has no schema: run `newsmon db upgrade`"
        )
    return engine


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


# --- db ----------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or update the schema (SQLite or PostgreSQL)."""
    engine = _engine(_settings())
    migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision.")]) -> None:
    """Undo migrations down to REVISION (``base`` removes every table)."""
    engine = _engine(_settings())
    migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    typer.echo(migrate.current_revision(_engine(_settings())) or "empty (no schema)")


# --- org / key / search --------------------------------------------------------------


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Display name.")],
    slug: Annotated[str | None, typer.Option(help="URL name; derived from NAME if absent.")] = None,
) -> None:
    """Create an organization and print its id and slug."""
    from core.tenancy.organizations import create_organization

    engine = _migrated_engine(_settings())
    with unit_of_work(engine) as session:
        org = create_organization(session, name=name, slug=slug)
        typer.echo(json.dumps({"id": org.id, "slug": org.slug, "name": org.name}))


def _parse_permissions(text: str) -> dict[str, list[str]]:
    perms: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        resource, _, action = item.partition(":")
        perms.setdefault(resource, []).append(action)
    return perms


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    org: Annotated[str | None, typer.Option(help="Organization slug.")] = None,
    operator: Annotated[bool, typer.Option("--operator", help="An operator key.")] = False,
    permissions: Annotated[
        str | None,
        typer.Option(help="Comma-separated resource:action list; default: every permission."),
    ] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
    remaining: Annotated[int | None, typer.Option(min=0, help="Request quota.")] = None,
    rate_limit_max: Annotated[int | None, typer.Option(min=1)] = None,
    rate_limit_window_s: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from core.keys import RESOURCE_ACTIONS
    from core.tenancy.api_keys import create_api_key, create_operator_key
    from core.tenancy.organizations import organization_by_slug

    if operator == (org is not None):
        raise ConfigError("--org/--operator", "give exactly one of --org SLUG or --operator")
    engine = _migrated_engine(_settings())
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with unit_of_work(engine) as session:
        if operator:
            issued = create_operator_key(session, name=name, expires_at=expires)
        else:
            assert org is not None
            organization = organization_by_slug(session, org)
            perms = (
                _parse_permissions(permissions)
                if permissions is not None
                else {r: sorted(a) for r, a in RESOURCE_ACTIONS.items()}
            )
            issued = create_api_key(
                session,
                organization.id,
                name=name,
                permissions=perms,
                expires_at=expires,
                remaining=remaining,
                rate_limit_max=rate_limit_max,
                rate_limit_window_ms=rate_limit_window_s * 1000 if rate_limit_window_s else None,
            )
    typer.echo(json.dumps({"id": issued.id, "key": issued.key, "start": issued.start}))
    typer.echo("Store this key now: it is shown only once.", err=True)


@search_app.command("add")
def search_add(
    org: Annotated[str, typer.Option(help="Organization slug.")],
    name: Annotated[str, typer.Option(help="Name of the search.")],
    feed: Annotated[list[str] | None, typer.Option(help="Feed URL to watch (repeatable).")] = None,
    opml: Annotated[
        Path | None,
        typer.Option(
            help="OPML file whose feeds to watch (with any --feed).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    query: Annotated[str, typer.Option(help="Boolean query, e.g. '\"open source\" AND ai'.")] = "",
    cron: Annotated[str | None, typer.Option(help="Cron schedule, e.g. '*/15 * * * *'.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone of the schedule.")] = "UTC",
    catch_up: Annotated[str, typer.Option(help="once, all or skip.")] = "once",
) -> None:
    """Create a search over feeds (and an OPML file's feeds), optionally with a cron schedule."""
    from core.news.opml import MAX_OPML_BYTES, parse_opml
    from core.news.searches import add_schedule, create_search
    from core.tenancy.organizations import organization_by_slug

    urls = list(feed or [])
    if opml is not None:
        with opml.open("rb") as handle:  # read one byte past the cap: parse_opml refuses it
            urls += [source.url for source in parse_opml(handle.read(MAX_OPML_BYTES + 1))]

    engine = _migrated_engine(_settings())
    with unit_of_work(engine) as session:
        organization = organization_by_slug(session, org)
        news = create_search(
            session,
            organization.id,
            name=name,
            search_query={"query": query, "sources": [{"type": "feed", "url": u} for u in urls]},
        )
        out: dict[str, object] = {"id": news.id, "name": news.name}
        if cron:
            sched = add_schedule(
                session,
                organization.id,
                news.id,
                cron_expr=cron,
                timezone=tz,
                catch_up=catch_up,
                now=utcnow(),
            )
            out["schedule"] = {"id": sched.id, "nextRun": sched.nextRun.isoformat()}  # type: ignore[union-attr]
    typer.echo(json.dumps(out))


# --- processes -------------------------------------------------------------------------


def _serve_web(settings: Settings, engine: Engine, broker: dramatiq.Broker | None = None) -> None:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings, engine, broker=broker),
        host=settings.web_host,
        port=settings.web_port,
        log_level=settings.log_level.lower(),
    )


def _require_production(settings: Settings, command: str) -> None:
    if settings.mode != "production":
        raise ConfigError(
            "NEWSMON_BROKER_URL",
            f"`newsmon {command}` as its own process needs the Redis broker; "
            "embedded mode runs everything in `newsmon run`",
        )


@app.command()
def web() -> None:
    """Serve the admin API, health and metrics."""
    settings = _settings()
    _serve_web(settings, _migrated_engine(settings))


def _broker(settings: Settings) -> dramatiq.Broker:
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
    from scheduler.loop import Scheduler
    from workers.deliver import enqueue_deliveries
    from workers.runs import enqueue_runs

    crash = os.environ.get(TEST_CRASH_AFTER_COMMIT_ENV) == "1"
    return Scheduler(
        engine,
        partial(enqueue_runs, broker),
        orphan_grace=timedelta(seconds=settings.orphan_grace_seconds),
        requeue_after=timedelta(seconds=settings.requeue_after_seconds),
        after_commit=_crash_after_commit if crash else None,
        enqueue_deliveries=partial(enqueue_deliveries, broker),
    )


def _pipeline(settings: Settings, engine: Engine) -> dramatiq.Broker:
    from workers.pipeline import build_pipeline, load_run_step

    step_spec = os.environ.get(TEST_RUN_STEP_ENV)
    step = load_run_step(step_spec, setting=TEST_RUN_STEP_ENV) if step_spec else None
    return build_pipeline(settings, engine, run_step=step, broker=_broker(settings))


@app.command()
def scheduler() -> None:
    """Run a scheduler replica (start as many as you like)."""
    settings = _settings()
    _require_production(settings, "scheduler")
    engine = _migrated_engine(settings)
    # Only the broker: a scheduler sends run messages and never imports what runs do.
    sched = _scheduler_for(settings, engine, _broker(settings))
    stop = threading.Event()
    _stop_on_signals(stop)
    log.info("scheduler started (tick %.1fs)", settings.scheduler_tick_seconds)
    sched.run_forever(stop, settings.scheduler_tick_seconds)
    log.info("scheduler stopped")


@app.command()
def worker() -> None:
    """Run a worker process (start as many as you like, on any machine)."""
    from workers.process import run_worker

    settings = _settings()
    _require_production(settings, "worker")
    engine = _migrated_engine(settings)
    broker = _pipeline(settings, engine)
    stop = threading.Event()
    _stop_on_signals(stop)
    run_worker(broker, settings.worker_threads, stop)


@app.command()
def run() -> None:
    """Run web, scheduler and worker in one process (embedded default: SQLite, no Redis).

    Ctrl-C stops it cleanly: the web server stops, in-flight runs finish, and anything
    unfinished is picked up again at the next start.
    """
    from workers.process import run_worker

    settings = _settings()
    engine = _migrated_engine(settings)
    broker = _pipeline(settings, engine)
    stop = threading.Event()
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
    for thread in threads:
        thread.start()
    log.info(
        "newsmon running (%s mode) on http://%s:%d",
        settings.mode,
        settings.web_host,
        settings.web_port,
    )
    try:
        # The in-process broker is shared, so "run now" reaches this process's worker.
        _serve_web(settings, engine, broker)  # blocks until SIGINT/SIGTERM
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        log.info("newsmon stopped")


# --- dlq -----------------------------------------------------------------------------

QueueOption = Annotated[str, typer.Option(help="Queue: fetch or deliver.")]


def _dlq_broker() -> dramatiq.Broker:
    settings = _settings()
    _require_production(settings, "dlq")
    return _broker(settings)


@dlq_app.command("list")
def dlq_list(
    queue: QueueOption = "fetch",
    limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 100,
) -> None:
    """Print the dead letters of a queue, one JSON object per line."""
    from workers.dead_letters import list_dead_letters

    for letter in list_dead_letters(_dlq_broker(), queue, limit=limit):
        typer.echo(json.dumps(letter.as_dict()))


@dlq_app.command("replay")
def dlq_replay(
    message_id: Annotated[str, typer.Argument(help="Message id (for runs: the run id).")],
    queue: QueueOption = "fetch",
) -> None:
    """Enqueue a dead-lettered message again and remove it from the dead letters."""
    from workers.dead_letters import replay_dead_letter

    if not replay_dead_letter(_dlq_broker(), queue, message_id):
        raise NotFound(f"no dead letter {message_id} in queue {queue}")
    typer.echo(json.dumps({"replayed": message_id, "queue": queue}))


@dlq_app.command("purge")
def dlq_purge(
    queue: QueueOption = "fetch",
    message_id: Annotated[str | None, typer.Option(help="Only this message.")] = None,
) -> None:
    """Drop the dead letters of a queue (or one of them)."""
    from workers.dead_letters import purge_dead_letters

    count = purge_dead_letters(_dlq_broker(), queue, message_id)
    typer.echo(json.dumps({"purged": count, "queue": queue}))


@app.command()
def demo() -> None:
    """Run the embedded system on a demo organization: feeds served on 127.0.0.1 (new
    items every 20 s, duplicates, URL variants), a file channel and a webhook receiver."""
    from cli.demo import start_demo_server

    server = start_demo_server()
    allow = os.environ.get("NEWSMON_FETCH_ALLOWLIST", "")
    os.environ["NEWSMON_FETCH_ALLOWLIST"] = ",".join(filter(None, [allow, "127.0.0.1"]))
    settings = _settings()
    if settings.mode != "embedded":
        raise ConfigError("NEWSMON_BROKER_URL", "the demo runs embedded; unset it")
    from cli.demo import set_up_demo

    set_up_demo(settings, _migrated_engine(settings), server.base)
    run()


def main() -> None:
    """Console entry point: user errors become one line and exit status 2."""
    try:
        app()
    except NewsmonError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
