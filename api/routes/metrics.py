"""Prometheus ``/metrics``: request counters of this process plus database and queue gauges.

The gauges (runs, deliveries and sources by state, stories by delivery, scheduler lag) are
read from the database at scrape time by one collector: a few GROUP BY queries on indexed
columns. Queue depths come from the broker; an unreachable broker leaves them out (the
scrape still succeeds, and ``/readyz`` says what is down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.deps import BROKER_ERRORS, request_broker
from core.clock import utcnow
from core.db.models import (
    DELIVERY_STATES,
    RUN_STATES,
    SOURCE_STATUSES,
    Delivery,
    Run,
    Source,
    Story,
)
from core.ops.overview import scheduler_lag
from workers.queue_depths import queue_depths

router = APIRouter(tags=["service"])


def _by_state(
    conn: Any, column: Any, states: tuple[str, ...], name: str, doc: str
) -> GaugeMetricFamily:
    counts = dict(conn.execute(select(column, func.count()).group_by(column)).all())
    family = GaugeMetricFamily(name, doc, labels=["state"])
    for state in states:
        family.add_metric([state], counts.get(state, 0))
    return family


class DatabaseCollector(Collector):
    """Database and queue gauges, read at each scrape."""

    def __init__(self, engine: Engine, broker: Callable[[], dramatiq.Broker]) -> None:
        self.engine = engine
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("newsmon_runs", "Runs in the database by state", labels=["state"])
        stories = GaugeMetricFamily(
            "newsmon_stories", "Stories in the database by delivery", labels=["delivered"]
        )
        with self.engine.connect() as conn:
            by_state = dict(conn.execute(select(Run.state, func.count()).group_by(Run.state)).all())
            by_delivery = dict(
                conn.execute(
                    select(Story.wasDelivered, func.count()).group_by(Story.wasDelivered)
                ).all()
            )
            deliveries = _by_state(
                conn,
                Delivery.state,
                DELIVERY_STATES,
                "newsmon_deliveries",
                "Deliveries in the database by state",
            )
            sources = _by_state(
                conn,
                Source.status,
                SOURCE_STATUSES,
                "newsmon_sources",
                "Shared sources by health (failing = backing off)",
            )
            with Session(bind=conn) as session:
                lag = scheduler_lag(session, now=utcnow())
        for state in RUN_STATES:
            runs.add_metric([state], by_state.get(state, 0))
        for delivered in (True, False):
            stories.add_metric([str(delivered).lower()], by_delivery.get(delivered, 0))
        yield from (runs, stories, deliveries, sources)
        yield GaugeMetricFamily(
            "newsmon_scheduler_lag_seconds",
            "How long the oldest due schedule has waited to fire (0 = none overdue)",
            value=lag.overdue_schedule.total_seconds() if lag.overdue_schedule else 0.0,
        )
        yield GaugeMetricFamily(
            "newsmon_oldest_queued_run_seconds",
            "Age of the oldest run waiting for a worker (0 = none)",
            value=lag.oldest_queued_run.total_seconds() if lag.oldest_queued_run else 0.0,
        )
        try:
            depths = queue_depths(self.broker())
        except BROKER_ERRORS:
            return
        queue = GaugeMetricFamily(
            "newsmon_queue_messages", "Messages per queue", labels=["queue", "kind"]
        )
        for depth in depths:
            for kind in ("ready", "delayed", "dead"):
                queue.add_metric([depth.queue, kind], getattr(depth, kind))
        yield queue


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text exposition (unauthenticated, like ``/healthz``; counts only)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    if not getattr(request.app.state, "db_collector", None):
        request.app.state.db_collector = DatabaseCollector(
            request.app.state.engine, lambda: request_broker(request)
        )
        registry.register(request.app.state.db_collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
