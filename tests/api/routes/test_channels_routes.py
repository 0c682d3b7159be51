"""Channels through the API: write-only secrets (rows 54, 58), private targets refused at
create (row 14), test sends with their exact outcome, links to searches."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

import core.delivery.deliveries as deliveries
from core.db.models import AuditLog, Channel, NewsChannel
from core.fetch import GuardPolicy, build_client
from tests.api.conftest import Tenant
from tests.api.routes.test_news_routes import new_search
from tests.support.http_server import LocalHTTPServer, Response, hang

SECRET = "whsec_" + base64.b64encode(b"s3cr3t-signing-key-0123456789ab").decode()
HOOK_TOKEN = "T0K3NxSECRETxPATHxPART"


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "hook", "type": "webhook", "config": {"url": url, "secret": SECRET, **extra}}


def refused(response: Any) -> dict[str, str]:
    """The one field a 422 names."""
    assert response.status_code == 422, response.text
    [field] = response.json()["error"]["fields"]
    return field  # type: ignore[no-any-return]


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
    created = create(client, org_a, {"type": "file", "config": {"directory": "digests"}})
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
    channel = create(client, org_a, {"type": "file", "config": {"directory": "d"}})
    theirs = create(client, org_b, {"type": "file", "config": {"directory": "d"}})
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
    body = {"type": "file", "config": {"directory": "d"}}
    response = client.post("/channels", json=body, headers={"x-api-key": read_only})
    assert response.status_code == 403
    assert "channels:write" in response.json()["error"]["message"]


def test_test_send_route_answers_within_the_test_send_deadline(
    client: TestClient, org_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver that accepts and never answers cannot hold the web worker for the
    client's own, longer timeouts (here 30 s): the test send's deadline cuts it."""
    monkeypatch.setattr(deliveries, "TEST_SEND_DEADLINE_S", 1.0)
    slow = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=30, read_timeout_s=15)
    state = client.app.state  # type: ignore[attr-defined]
    state.send_context = replace(state.send_context, client=build_client(slow), policy=slow)
    with LocalHTTPServer(raw={"/x": hang(30)}) as receiver:
        channel = create(client, org_a, webhook(receiver.url_for("/x")))
        started = time.monotonic()
        answer = client.post(f"/channels/{channel['id']}/test", headers=org_a.headers)
        elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "unknown" and "deadline" in answer.json()["error"]
    assert elapsed < 2.5


@pytest.mark.parametrize(
    "url",
    [
        "syslog://",
        "rsyslog://127.0.0.1",
        "windows://",
        "macosx://",
        "dbus://",
        "glib://",
        "slack://T0AAAAAAA/B0AAAAAAA/abcdefghijkl",
        "https://discord.com/api/webhooks/1234567/TokenABC",
        "json-without-scheme",
    ],
)
def test_apprise_service_outside_the_supported_list_is_422_at_create_and_update(
    client: TestClient, org_a: Tenant, url: str
) -> None:
    body = {"type": "apprise", "config": {"url": url}}
    created = client.post("/channels", json=body, headers=org_a.headers)
    supported = create(
        client, org_a, {"type": "apprise", "config": {"url": "ntfys://ntfy.example/t"}}
    )
    updated = client.patch(
        f"/channels/{supported['id']}", json={"config": {"url": url}}, headers=org_a.headers
    )
    for response in (created, updated):
        field = refused(response)
        assert field["field"] == "config.url"
        assert "not a supported apprise service; supported: json://" in field["message"]


def test_apprise_mailto_whose_smtp_parameter_is_private_is_422(
    client: TestClient, org_a: Tenant
) -> None:
    url = "mailto://user:pass@example.com?smtp=10.0.0.5&port=25"
    response = client.post(
        "/channels", json={"type": "apprise", "config": {"url": url}}, headers=org_a.headers
    )
    field = refused(response)
    assert field["field"] == "config.url" and "10.0.0.5 is private" in field["message"]


@pytest.mark.parametrize("directory", ["/etc/cron.d", "../org-b", "x/../../y"])
def test_file_channel_directory_outside_the_organization_folder_is_422(
    client: TestClient, org_a: Tenant, directory: str
) -> None:
    body = {"type": "file", "config": {"directory": directory}}
    response = client.post("/channels", json=body, headers=org_a.headers)
    assert refused(response)["field"] == "config.directory"


def test_file_channel_is_422_where_file_channels_are_off(client: TestClient, org_a: Tenant) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    existing = create(client, org_a, {"type": "file", "config": {"directory": "d"}})
    state.send_context = replace(state.send_context, file_root=None)  # production, no root
    created = client.post(
        "/channels", json={"type": "file", "config": {"directory": "d"}}, headers=org_a.headers
    )
    updated = client.patch(
        f"/channels/{existing['id']}", json={"config": {"directory": "e"}}, headers=org_a.headers
    )
    for response in (created, updated):
        field = refused(response)
        assert field["field"] == "type"
        assert "NEWSMON_FILE_CHANNEL_ROOT" in field["message"]


@pytest.mark.parametrize(
    "url",
    [
        "discord://1234567/TokenABC?template=/etc/passwd",
        "tgram://123456789:AABBCCtoken/987654?a=1;TEMPLATE=file:///etc/passwd",
        "mailto://u:p@example.com?pgp=sign&pgppub=/etc/ssl/private/key.pem",
        "mailtos://u:p@example.com?wkd=yes",
        "json://hooks.example/x?store=yes",
    ],
)
def test_apprise_parameters_touching_local_files_are_422(
    client: TestClient, org_a: Tenant, url: str
) -> None:
    body = {"type": "apprise", "config": {"url": url}}
    response = client.post("/channels", json=body, headers=org_a.headers)
    field = refused(response)
    assert field["field"] == "config.url" and "parameter is not allowed" in field["message"]
