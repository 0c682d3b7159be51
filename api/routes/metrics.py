"""Prometheus ``/metrics``: request counters of this process plus database and queue gauges.

The database gauges come from :func:`core.ops.gauges.read_gauges` (bounded index reads,
whatever the size of the tables). ``/metrics`` always answers: with the database down,
``newsmon_database_up`` is 0 and the database gauges are absent (never stale, never a
500); with the broker down the queue gauges are absent. ``/readyz`` says what is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import dramatiq
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.deps import request_broker
from core.clock import utcnow
from core.ops.gauges import DatabaseGauges, read_gauges
from workers.broker import BROKER_ERRORS
from workers.queue_depths import queue_depths

router = APIRouter(tags=["service"])

log = logging.getLogger(__name__)


def _labelled(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def _database_metrics(gauges: DatabaseGauges) -> Iterator[Metric]:
    yield _labelled("newsmon_runs", "Runs in flight by state", "state", gauges.runs)
    yield _labelled(
        "newsmon_deliveries", "Deliveries not sent (yet) by state", "state", gauges.deliveries
    )
    yield _labelled(
        "newsmon_sources",
        "Shared sources by health (failing = backing off)",
        "state",
        gauges.sources,
    )
    yield _labelled(
        "newsmon_runs_finished_last_hour",
        "Runs finished in the last hour by outcome",
        "state",
        gauges.runs_finished_recently,
    )
    yield GaugeMetricFamily(
        "newsmon_deliveries_sent_last_hour",
        "Deliveries sent in the last hour",
        value=gauges.deliveries_sent_recently,
    )
    yield GaugeMetricFamily(
        "newsmon_stories_found_last_hour",
        "Stories found in the last hour",
        value=gauges.stories_found_recently,
    )
    lag = gauges.lag
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
    yield _labelled(
        "newsmon_health_failing",
        "Subjects of organizations' health alerts now failing, by kind",
        "kind",
        gauges.health_failing,
    )
    yield GaugeMetricFamily(
        "newsmon_health_alerts_untold",
        "Health changes not yet told to their organization (rate limit, no working channel)",
        value=gauges.health_untold,
    )


class DatabaseCollector(Collector):
    """Database and queue gauges, read at each scrape; never raises."""

    def __init__(self, engine: Engine, broker: Callable[[], dramatiq.Broker]) -> None:
        self.engine = engine
        self.broker = broker

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                gauges: DatabaseGauges | None = read_gauges(conn, now=utcnow())
        except SQLAlchemyError as exc:
            log.debug("metrics: database gauges skipped: %s", exc)
            gauges = None
        yield GaugeMetricFamily(
            "newsmon_database_up",
            "1 when the database answered this scrape's gauge queries",
            value=0 if gauges is None else 1,
        )
        if gauges is not None:
            yield from _database_metrics(gauges)
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
