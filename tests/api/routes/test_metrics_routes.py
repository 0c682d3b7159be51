"""/metrics exposes database, scheduler and queue gauges for Prometheus."""

from __future__ import annotations

import socket
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.clock import utcnow
from core.config import Settings
from core.db.models import HealthAlert, Run, Source
from core.db.session import make_engine, unit_of_work
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


def test_metrics_show_what_health_alerts_call_failing_and_what_is_not_told_yet(
    client: TestClient, api_engine: Engine
) -> None:
    now = utcnow()
    with unit_of_work(api_engine) as session:
        org = factories.org(session, "health")
        for kind, state, told in (
            ("source", "failing", None),  # found, not told yet
            ("channel", "failing", "failing"),  # told
            ("news", "ok", "failing"),  # recovered, the recovery not told yet
            ("news", "ok", None),  # never broken as far as anyone was told
        ):
            session.add(
                HealthAlert(
                    organizationId=org.id,
                    subjectKind=kind,
                    subjectId=f"{kind}-{state}-{told}",
                    state=state,
                    notifiedState=told,
                    changedAt=now,
                )
            )
    text = client.get("/metrics").text
    failing = {
        k: _value(text, f'newsmon_health_failing{{kind="{k}"}}')
        for k in ("source", "channel", "news")
    }
    assert failing == {"source": 1, "channel": 1, "news": 0}
    assert _value(text, "newsmon_health_alerts_untold") == 2


def test_metrics_count_what_finished_in_the_last_hour(client: TestClient, api_engine: Engine):
    now = utcnow()
    with unit_of_work(api_engine) as session:
        search = factories.news(session, factories.org(session, "recent"))
        for state, finished in (
            ("succeeded", now - timedelta(minutes=5)),
            ("failed", now - timedelta(minutes=10)),
            ("succeeded", now - timedelta(days=2)),  # outside the window
        ):
            session.add(
                Run(
                    organizationId=search.organizationId,
                    newsId=search.id,
                    scheduledFor=finished,
                    state=state,
                    finishedAt=finished,
                    trigger="manual",
                )
            )
        factories.story(session, search, "https://a.example/1", foundAt=now)
        factories.story(session, search, "https://a.example/2", foundAt=now - timedelta(days=3))
    text = client.get("/metrics").text
    assert _value(text, "newsmon_database_up") == 1
    assert _value(text, 'newsmon_runs_finished_last_hour{state="succeeded"}') == 1
    assert _value(text, 'newsmon_runs_finished_last_hour{state="failed"}') == 1
    assert _value(text, "newsmon_stories_found_last_hour") == 1
    assert 'newsmon_runs{state="succeeded"}' not in text  # unbounded totals are not counted


def test_metrics_answer_while_the_database_is_down():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none")
    app = create_app(Settings(), engine)
    with TestClient(app) as down:
        assert down.get("/healthz").status_code == 200
        response = down.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert _value(text, "newsmon_database_up") == 0
    assert "newsmon_runs{" not in text and "newsmon_scheduler_lag_seconds" not in text
    assert "newsmon_http_requests_total" in text  # this process's own series stay
