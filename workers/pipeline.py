"""Wiring of the whole pipeline: the broker and every actor bound to it."""

from __future__ import annotations

import importlib
from datetime import timedelta
from functools import partial
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from core.config import Settings
from core.delivery.deliveries import SendContext
from core.errors import ConfigError
from core.fetch import build_client
from core.fetch.address_policy import GuardPolicy
from core.fetch.politeness import HostLimiter, Limiter, RedisHostLimiter
from core.health.detect import HealthPolicy
from core.ingest.source_clock import ClockPolicy
from core.scheduling.leases import LeaseKeeper
from core.scheduling.steps import RunPhases, RunStep
from workers.broker import build_broker
from workers.deliver import DELIVER_TIME_LIMIT, declare_deliver_actor, enqueue_deliveries
from workers.health_alerts import declare_health_alert_actor
from workers.refresh import declare_refresh_actor
from workers.runs import declare_run_actor, enqueue_runs

#: Factory of what a run does by default, as ``module:function`` taking the fetch policy
#: (imported when a worker starts: parsing and HTTP are heavy, a scheduler needs neither).
DEFAULT_RUN_STEP_FACTORY = "core.ingest.step:make_ingest_step"
#: Seconds one delivery request may take in all (a receiver that hangs fails the attempt).
DELIVERY_DEADLINE_S = 20.0


def load_run_step(spec: str, *, setting: str = "run step") -> Any:
    """The callable named ``module:function``; a missing one is a one-line ConfigError."""
    module_name, _, attr = spec.partition(":")
    try:
        step = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(setting, f"cannot load {spec!r}: {exc}") from None
    return step


def build_pipeline(
    settings: Settings,
    engine: Engine,
    *,
    run_step: RunStep | RunPhases | None = None,
    broker: dramatiq.Broker | None = None,
) -> dramatiq.Broker:
    """The broker for ``settings`` with every actor declared on it.

    ``run_step`` replaces what a run does (tests); by default a run ingests its sources.
    """
    if run_step is None:
        make_step = load_run_step(DEFAULT_RUN_STEP_FACTORY, setting="default run step")
        run_step = make_step(GuardPolicy.from_allowlist(settings.fetch_allowlist_entries))
    broker = broker or build_broker(settings)
    built = broker

    def enqueue_new_deliveries(stats: dict[str, Any]) -> None:
        enqueue_deliveries(built, list(stats.get("deliveryIds", ())))

    run_lease = timedelta(seconds=settings.run_lease_seconds)
    run_time_limit = timedelta(seconds=settings.run_time_limit_seconds)
    delivery_lease = timedelta(seconds=settings.delivery_lease_seconds)
    keeper: LeaseKeeper | None = None
    if isinstance(broker, RedisBroker):
        keeper = LeaseKeeper(engine, run_lease=run_lease, delivery_lease=delivery_lease)
    else:
        # Embedded: this process is the only worker, and its start-up recovers whatever
        # it held; a lease as long as the actor's time limit needs no renewing writes,
        # which on SQLite would only contend with the work itself.
        run_lease = max(run_lease, run_time_limit)
        delivery_lease = max(delivery_lease, DELIVER_TIME_LIMIT)
    declare_run_actor(
        broker,
        engine,
        run_step,
        lease=run_lease,
        time_limit=run_time_limit,
        keeper=keeper,
        after_success=enqueue_new_deliveries,
    )
    declare_deliver_actor(
        broker,
        engine,
        partial(delivery_context, settings),
        lease=delivery_lease,
        keeper=keeper,
    )
    declare_health_alert_actor(
        broker,
        engine,
        partial(delivery_context, settings),
        policy=HealthPolicy.from_settings(settings),
    )
    declare_refresh_actor(
        broker,
        engine,
        build_client(
            GuardPolicy.from_allowlist(
                settings.fetch_allowlist_entries, user_agent=settings.fetch_user_agent
            )
        ),
        limiter=host_limiter(settings, broker),
        policy=ClockPolicy.from_settings(settings),
        enqueue_runs=partial(enqueue_runs, built),
    )
    return broker


def host_limiter(settings: Settings, broker: dramatiq.Broker) -> Limiter:
    """Per-host politeness: in Redis when the broker is Redis (every worker process and
    machine shares it), in the process otherwise (embedded: one process)."""
    if isinstance(broker, RedisBroker):
        redis_broker: Any = broker
        return RedisHostLimiter(
            redis_broker.client,
            redis_broker.namespace,
            settings.fetch_host_concurrency,
            settings.fetch_host_interval_seconds,
        )
    return HostLimiter(settings.fetch_host_concurrency, settings.fetch_host_interval_seconds)


def delivery_context(settings: Settings) -> SendContext:
    """What the deliver actor sends with: channel keys, guarded client, address policy
    (built when the first delivery arrives, so a scheduler never needs the keys)."""
    from core.delivery.channels import load_keyring  # noqa: PLC0415
    from core.delivery.digest_links import LINK_KEY_PURPOSE, DigestLinks  # noqa: PLC0415

    policy = GuardPolicy.from_allowlist(
        settings.fetch_allowlist_entries, deadline_s=DELIVERY_DEADLINE_S
    )
    keyring = load_keyring(settings)
    links = None
    if settings.public_url:  # links need an address the reader's browser reaches
        links = DigestLinks(settings.public_url, keyring.derive(LINK_KEY_PURPOSE))
    return SendContext(
        keyring=keyring,
        client=build_client(policy),
        policy=policy,
        file_root=settings.file_channel_folder,
        links=links,
        # buttons need both: the signed token and Slack's way back to this process
        slack_buttons=links is not None and bool(settings.slack_signing_secret.get_secret_value()),
    )
