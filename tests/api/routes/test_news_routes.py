"""Searches, schedules and "run now" through the API; the error shape and audit rows."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.middleware import MAX_BODY_BYTES
from core.config import Settings
from core.db.models import AuditLog, Run
from tests.api.conftest import Tenant
from workers.broker import build_broker

FEED = {"url": "https://example.com/feed.xml"}


def new_search(client: TestClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "AI", "searchQuery": {"query": "ai", "sources": [FEED]}, **fields}
    response = client.post("/news", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_search_crud_and_audit(client: TestClient, org_a: Tenant, api_engine: Engine) -> None:
    news = new_search(client, org_a, waitSettings={"mode": "digest", "intervalMinutes": 60})
    assert news["searchQuery"]["sources"] == [{"type": "feed", **FEED}]
    patched = client.patch(
        f"/news/{news['id']}", json={"name": "ML", "isActive": False}, headers=org_a.headers
    ).json()
    assert (patched["name"], patched["isActive"], patched["waitSettings"]) == (
        "ML",
        False,
        {"mode": "digest", "intervalMinutes": 60},
    )
    assert client.get(f"/news/{news['id']}", headers=org_a.headers).json()["name"] == "ML"
    assert client.delete(f"/news/{news['id']}", headers=org_a.headers).status_code == 204
    assert client.get(f"/news/{news['id']}", headers=org_a.headers).status_code == 404
    with api_engine.connect() as conn:
        audit = conn.execute(select(AuditLog).order_by(AuditLog.createdAt)).all()
    assert [a.action for a in audit] == ["news.create", "news.update", "news.delete"]
    assert {(a.actorType, a.actorId, a.organizationId) for a in audit} == {
        ("apikey", org_a.key_id, org_a.id)
    }
    assert all(a.requestId for a in audit)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"query": "ai", "sources": [{"url": "file:///etc/passwd"}]}, "searchQuery.sources.0"),
        ({"query": "ai", "sources": [{"url": "gopher://x"}]}, "searchQuery.sources.0"),
        ({"query": "(ai", "sources": []}, "searchQuery.query"),
    ],
)
def test_bad_search_query_is_422_naming_the_field(
    client: TestClient, org_a: Tenant, query: dict[str, Any], field: str
) -> None:
    response = client.post("/news", json={"name": "x", "searchQuery": query}, headers=org_a.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["fields"][0]["field"].startswith(field)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/feed.xml",
        "http://10.1.2.3/feed.xml",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed.xml",
    ],
)
def test_a_feed_on_a_private_address_is_refused_at_create_and_update(
    client: TestClient, org_a: Tenant, url: str
) -> None:
    query = {"query": "ai", "sources": [FEED, {"url": url}]}
    response = client.post("/news", json={"name": "x", "searchQuery": query}, headers=org_a.headers)
    assert response.status_code == 422, response.text
    (field,) = response.json()["error"]["fields"]
    assert field["field"] == "searchQuery.sources.1.url"
    assert client.get("/news", headers=org_a.headers).json()["items"] == []

    news = new_search(client, org_a)
    patched = client.patch(
        f"/news/{news['id']}", json={"searchQuery": query}, headers=org_a.headers
    )
    assert patched.status_code == 422, patched.text
    stored = client.get(f"/news/{news['id']}", headers=org_a.headers).json()
    assert stored["searchQuery"]["sources"] == [{"type": "feed", **FEED}]


def test_schedule_crud_with_next_fires(client: TestClient, org_a: Tenant) -> None:
    news = new_search(client, org_a)
    base = f"/news/{news['id']}/schedules"
    created = client.post(
        base, json={"cronExpr": "0 9 * * 1-5", "timezone": "Europe/Berlin"}, headers=org_a.headers
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert len(schedule["nextFires"]) == 5
    assert schedule["description"]
    assert schedule["nextRun"] == schedule["nextFires"][0]
    bad = client.patch(
        f"{base}/{schedule['id']}", json={"cronExpr": "61 * * * *"}, headers=org_a.headers
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "cronExpr"
    tz = client.post(
        base, json={"cronExpr": "* * * * *", "timezone": "Mars/Base"}, headers=org_a.headers
    )
    assert tz.json()["error"]["fields"][0]["field"] == "timezone"
    paused = client.patch(
        f"{base}/{schedule['id']}", json={"isActive": False}, headers=org_a.headers
    ).json()
    assert paused["nextFires"] == []
    assert len(client.get(base, headers=org_a.headers).json()["items"]) == 1
    assert client.delete(f"{base}/{schedule['id']}", headers=org_a.headers).status_code == 204
    assert client.get(base, headers=org_a.headers).json()["items"] == []


def test_run_now_enqueues_once_per_waiting_run(
    api_engine: Engine, org_a: Tenant, clock: Any
) -> None:
    broker = build_broker(Settings())
    app = create_app(Settings(), api_engine, broker=broker, clock=clock)
    with TestClient(app) as client:
        news = new_search(client, org_a)
        first = client.post(f"/news/{news['id']}/run", headers=org_a.headers)
        second = client.post(f"/news/{news['id']}/run", headers=org_a.headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["created"] and not second.json()["created"]
    assert first.json()["runId"] == second.json()["runId"]
    assert broker.queues["fetch"].qsize() == 2  # duplicates are harmless: the claim decides
    with api_engine.connect() as conn:
        run = conn.execute(select(Run)).one()
    assert run.enqueuedAt is not None and run.trigger == "manual"


def test_run_now_with_redis_down_is_503_and_writes_nothing(
    api_engine: Engine, org_a: Tenant, clock: Any
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings.model_construct(broker_url=f"redis://127.0.0.1:{port}/0")
    app = create_app(settings, api_engine, clock=clock)
    with TestClient(app) as client:
        news = new_search(client, org_a)
        response = client.post(f"/news/{news['id']}/run", headers=org_a.headers)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "service_unavailable"
    with api_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Run)) == 0
        actions = list(conn.scalars(select(AuditLog.action)))
    assert "news.run" not in actions


def test_errors_share_one_shape(client: TestClient, org_a: Tenant) -> None:
    for response in (
        client.get("/nowhere", headers=org_a.headers),
        client.get("/news", params={"limit": 10_000}, headers=org_a.headers),
        client.post(
            "/news",
            content=b"{not json",
            headers={**org_a.headers, "content-type": "application/json"},
        ),
        client.put("/news", headers=org_a.headers),
    ):
        assert response.status_code in {404, 405, 422}, response.text
        error = response.json()["error"]
        assert set(error) == {"type", "message", "fields"}


def test_body_over_the_limit_is_413(client: TestClient, org_a: Tenant) -> None:
    big = {"name": "x", "searchQuery": {"query": "a" * MAX_BODY_BYTES, "sources": []}}
    response = client.post("/news", json=big, headers=org_a.headers)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"x-request-id": "bad id\r\n"}).headers["x-request-id"]
    assert made != "bad id" and len(made) == 26


def test_pagination_walks_every_item_once(client: TestClient, org_a: Tenant) -> None:
    ids = {new_search(client, org_a, name=f"s{i}")["id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/news", params=params, headers=org_a.headers).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_metrics_count_requests_by_route(client: TestClient, org_a: Tenant) -> None:
    client.get("/news", headers=org_a.headers)
    text = client.get("/metrics").text
    assert 'newsmon_http_requests_total{method="GET",route="/news",status="200"} 1.0' in text
    assert 'newsmon_runs{state="queued"}' in text
