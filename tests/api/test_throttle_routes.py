"""Run-now and channel test sends are throttled per organization (429 ``throttled`` with
Retry-After), counted in the database so every web process shares the limit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core.config import Settings
from tests.api.conftest import FakeClock, Tenant, another_key
from tests.api.routes.test_channels_routes import create, webhook
from tests.api.routes.test_news_routes import new_search
from tests.support.http_server import LocalHTTPServer, Response
from workers.broker import build_broker


def test_run_now_is_limited_per_organization(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant, clock: FakeClock
) -> None:
    client.app.state.settings = Settings(run_now_per_minute=2)  # type: ignore[attr-defined]
    client.app.state.broker = build_broker(Settings())  # type: ignore[attr-defined]
    news = new_search(client, org_a)
    path = f"/news/{news['id']}/run"
    reader = another_key(api_engine, org_a, permissions={"news": ["read"]})
    assert client.post(path, headers=reader.headers).status_code == 403  # counts nothing
    assert [client.post(path, headers=org_a.headers).status_code for _ in range(2)] == [202, 202]
    refused = client.post(path, headers=org_a.headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["type"] == "throttled"
    assert "2 a minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    b_news = new_search(client, org_b)
    assert client.post(f"/news/{b_news['id']}/run", headers=org_b.headers).status_code == 202
    clock.advance(seconds=60)
    assert client.post(path, headers=org_a.headers).status_code == 202


def test_channel_test_sends_are_limited_per_organization(
    client: TestClient, org_a: Tenant, clock: FakeClock
) -> None:
    client.app.state.settings = Settings(channel_test_per_minute=1)  # type: ignore[attr-defined]
    with LocalHTTPServer(routes={"/ok": Response(status=200)}) as receiver:
        channel = create(client, org_a, webhook(receiver.url_for("/ok")))
        path = f"/channels/{channel['id']}/test"
        assert client.post(path, headers=org_a.headers).json()["kind"] == "sent"
        refused = client.post(path, headers=org_a.headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "throttled"
        assert "retry-after" in refused.headers
        assert len(receiver.requests) == 1  # the refused one sent nothing
        clock.advance(seconds=60)
        assert client.post(path, headers=org_a.headers).json()["kind"] == "sent"
