"""Wiring of the whole pipeline: the broker and every actor bound to it."""

from __future__ import annotations

import importlib
from datetime import timedelta
from functools import partial
from typing import Any

import dramatiq
from sqlalchemy import Engine

from core.config import Settings
from core.delivery.deliveries import SendContext
from core.errors import ConfigError
from core.fetch.address_policy import GuardPolicy
from core.scheduling.steps import RunPhases, RunStep
from workers.broker import build_broker
from workers.deliver import declare_deliver_actor, enqueue_deliveries
from workers.runs import declare_run_actor

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

    declare_run_actor(
        broker,
        engine,
        run_step,
        lease=timedelta(seconds=settings.run_lease_seconds),
        after_success=enqueue_new_deliveries,
    )
    declare_deliver_actor(
        broker,
        engine,
        partial(delivery_context, settings),
        lease=timedelta(seconds=settings.delivery_lease_seconds),
    )
    return broker


def delivery_context(settings: Settings) -> SendContext:
    """What the deliver actor sends with: channel keys, guarded client, address policy
    (built when the first delivery arrives, so a scheduler never needs the keys)."""
    from core.delivery.channels import load_keyring  # noqa: PLC0415
    from core.fetch import build_client  # noqa: PLC0415

    policy = GuardPolicy.from_allowlist(
        settings.fetch_allowlist_entries, deadline_s=DELIVERY_DEADLINE_S
    )
    return SendContext(
        keyring=load_keyring(settings),
        client=build_client(policy),
        policy=policy,
        file_root=settings.file_channel_folder,
    )
