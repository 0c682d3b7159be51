"""/metrics exposes database, scheduler and queue gauges for Prometheus."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.models import Source
from core.db.session import unit_of_work
from tests.support import factories


def _value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in metrics")


def test_metrics_show_failing_sources_lag_and_queues(client: TestClient, api_engine: Engine):
    with unit_of_work(api_engine) as session:
        search = factories.news(session, factories.org(session, "m"))
        factories.schedule(session, search, nextRun=utcnow() - timedelta(minutes=3))
        session.add(Source(url="https://feeds.example/x", status="failing", failureCount=2))
    text = client.get("/metrics").text
    assert _value(text, 'newsmon_sources{state="failing"}') == 1
    assert _value(text, 'newsmon_deliveries{state="pending"}') == 0
    assert _value(text, "newsmon_scheduler_lag_seconds") >= 180
    assert _value(text, 'newsmon_queue_messages{kind="ready",queue="fetch"}') == 0
