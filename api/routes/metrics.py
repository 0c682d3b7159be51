"""Prometheus ``/metrics``: request counters of this process plus database gauges.

The gauges (runs by state, stories by delivery) are read from the database at scrape
time by one collector: two GROUP BY queries, cheap on the indexed columns.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from core.db.models import RUN_STATES, Run, Story

router = APIRouter(tags=["service"])


class DatabaseCollector(Collector):
    """Runs by state and stories by delivery state, read at each scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        for state in RUN_STATES:
            runs.add_metric([state], by_state.get(state, 0))
        for delivered in (True, False):
            stories.add_metric([str(delivered).lower()], by_delivery.get(delivered, 0))
        yield runs
        yield stories


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text exposition (unauthenticated, like ``/healthz``; counts only)."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    if not getattr(request.app.state, "db_collector", None):
        request.app.state.db_collector = DatabaseCollector(request.app.state.engine)
        registry.register(request.app.state.db_collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
