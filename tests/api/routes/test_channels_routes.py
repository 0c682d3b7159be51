"""Channels through the API: write-only secrets (rows 54, 58), private targets refused at
create (row 14), test sends with their exact outcome, links to searches."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import AuditLog, Channel, NewsChannel
from tests.api.conftest import Tenant
from tests.api.routes.test_news_routes import new_search
from tests.support.http_server import LocalHTTPServer, Response

SECRET = "whsec_" + base64.b64encode(b"s3cr3t-signing-key-0123456789ab").decode()
HOOK_TOKEN = "T0K3NxSECRETxPATHxPART"


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "hook", "type": "webhook", "config": {"url": url, "secret": SECRET, **extra}}


def create(client: TestClient, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/channels", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_secrets_are_write_only_and_sealed_at_rest(
    client: TestClient, org_a: Tenant, api_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"https://hooks.example.com/services/{HOOK_TOKEN}"
    created = create(client, org_a, webhook(url))
    responses = [
        client.get(f"/channels/{created['id']}", headers=org_a.headers),
        client.get("/channels", headers=org_a.headers),
        client.patch(
            f"/channels/{created['id']}",
            json={"config": {"url": url, "secret": SECRET}},
            headers=org_a.headers,
        ),
    ]
    texts = [str(created), *(r.text for r in responses)]
    assert all(r.status_code == 200 for r in responses)
    assert created["config"]["url"].startswith("https://hooks.example.com/")
    assert created["config"]["secret"] != SECRET
    with api_engine.connect() as conn:
        raw = conn.execute(select(Channel.config)).scalar_one()
        audit = [str(a) for a in conn.execute(select(AuditLog.details)).scalars()]
    texts += [str(raw), *audit, caplog.text]
    for text in texts:
        assert SECRET not in text
        assert HOOK_TOKEN not in text


@pytest.mark.parametrize(
    "url", ["http://127.0.0.2/hook", "http://10.1.2.3/hook", "http://[::1]:8080/x"]
)
def test_webhook_on_a_private_address_is_422_at_create(
    client: TestClient, org_a: Tenant, url: str
) -> None:
    response = client.post("/channels", json=webhook(url), headers=org_a.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "config.url"


def test_apprise_json_target_on_a_private_address_is_422(client: TestClient, org_a: Tenant) -> None:
    body = {"type": "apprise", "config": {"url": "json://192.168.1.10/notify"}}
    response = client.post("/channels", json=body, headers=org_a.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "config.url"


def test_bad_config_is_422_naming_the_field(client: TestClient, org_a: Tenant) -> None:
    body = webhook("https://hooks.example.com/x")
    body["config"]["secret"] = "plain"
    response = client.post("/channels", json=body, headers=org_a.headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "config.secret"
    assert "plain" not in response.text


def test_test_send_answers_the_exact_outcome(client: TestClient, org_a: Tenant) -> None:
    routes = {"/ok": Response(status=200, body=b"thanks"), "/gone": Response(status=410)}
    with LocalHTTPServer(routes=routes) as receiver:  # 127.0.0.1 is allowlisted in tests
        ok = create(client, org_a, webhook(receiver.url_for("/ok")))
        gone = create(client, org_a, webhook(receiver.url_for("/gone")))
        sent = client.post(f"/channels/{ok['id']}/test", headers=org_a.headers)
        failed = client.post(f"/channels/{gone['id']}/test", headers=org_a.headers)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["kind"], sent.json()["status"]) == ("sent", 200)
    assert (failed.json()["kind"], failed.json()["status"], failed.json()["permanent"]) == (
        "failed",
        410,
        True,
    )
    assert receiver.requests[0].headers.get("webhook-id", "").startswith("test_")
    # a test send records nothing on the channel
    after = client.get(f"/channels/{gone['id']}", headers=org_a.headers).json()
    assert (after["status"], after["consecutiveFailures"]) == ("ok", 0)


def test_crud_and_audit(client: TestClient, org_a: Tenant, api_engine: Engine) -> None:
    created = create(client, org_a, {"type": "file", "config": {"directory": "/tmp/digests"}})
    assert created["name"] == "file"
    patched = client.patch(
        f"/channels/{created['id']}",
        json={"name": "Files", "isActive": False},
        headers=org_a.headers,
    ).json()
    assert (patched["name"], patched["isActive"]) == ("Files", False)
    assert client.delete(f"/channels/{created['id']}", headers=org_a.headers).status_code == 204
    assert client.get(f"/channels/{created['id']}", headers=org_a.headers).status_code == 404
    with api_engine.connect() as conn:
        actions = list(conn.scalars(select(AuditLog.action).order_by(AuditLog.createdAt)))
    assert actions == ["channel.create", "channel.update", "channel.delete"]


def test_link_and_unlink_a_channel_to_a_search(
    client: TestClient, org_a: Tenant, org_b: Tenant, api_engine: Engine
) -> None:
    news = new_search(client, org_a)
    channel = create(client, org_a, {"type": "file", "config": {"directory": "/tmp/d"}})
    theirs = create(client, org_b, {"type": "file", "config": {"directory": "/tmp/d"}})
    path = f"/news/{news['id']}/channels"
    assert client.post(f"{path}/{channel['id']}", headers=org_a.headers).status_code == 204
    assert client.post(f"{path}/{channel['id']}", headers=org_a.headers).status_code == 204
    listed = client.get(path, headers=org_a.headers).json()["items"]
    assert [c["id"] for c in listed] == [channel["id"]]
    # another organization's channel: the database refuses the link, the API says 404
    refused = client.post(f"{path}/{theirs['id']}", headers=org_a.headers)
    assert refused.status_code == 404
    assert theirs["id"] not in refused.text
    assert client.delete(f"{path}/{channel['id']}", headers=org_a.headers).status_code == 204
    assert client.delete(f"{path}/{channel['id']}", headers=org_a.headers).status_code == 404
    with api_engine.connect() as conn:
        assert conn.scalar(select(NewsChannel.id)) is None


def test_channels_need_their_permission(client: TestClient, org_a: Tenant) -> None:
    from tests.api.conftest import add_key  # noqa: PLC0415

    read_only = add_key(client.app.state.engine, org_a, permissions={"channels": ["read"]})  # type: ignore[attr-defined]
    body = {"type": "file", "config": {"directory": "/tmp/d"}}
    response = client.post("/channels", json=body, headers={"x-api-key": read_only})
    assert response.status_code == 403
    assert "channels:write" in response.json()["error"]["message"]
