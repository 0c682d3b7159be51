"""Wiring of the whole pipeline: the broker and every actor bound to it."""

from __future__ import annotations

import dramatiq
from sqlalchemy import Engine

from core.config import Settings
from core.scheduling.steps import RunStep
from workers.broker import build_broker
from workers.runs import declare_run_actor


def build_pipeline(
    settings: Settings,
    engine: Engine,
    *,
    run_step: RunStep | None = None,
    broker: dramatiq.Broker | None = None,
) -> dramatiq.Broker:
    """The broker for ``settings`` with every actor declared on it.

    ``run_step`` replaces what a run does (tests); by default a run ingests its sources.
    """
    if run_step is None:
        from core.ingest.step import ingest_step  # noqa: PLC0415  (heavy: parsing, HTTP)

        run_step = ingest_step
    broker = broker or build_broker(settings)
    declare_run_actor(broker, engine, run_step)
    return broker
