"""Row 58: a channel's secrets never appear in an API response, a delivery record or a
log line, even when the target echoes them back and the tokens are lower case."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from core.clock import utcnow
from core.db.models import News
from core.db.session import unit_of_work
from core.delivery.deliveries import deliver
from core.delivery.digests import plan_and_create
from core.logs import APPRISE_LOGGER, URL_LOGGING_LIBRARIES, quiet_secret_loggers
from core.masking import LOG_REDACTOR
from tests.api.conftest import Tenant
from tests.api.routes.test_news_routes import new_search
from tests.support import factories
from tests.support.http_server import LocalHTTPServer, Request, Response

HOOK_TOKEN = "lowercasehooktoken"
QUERY_TOKEN = "querytokenvalue"
SLACK_TOKEN = "slacklowercasetokenvalue"
NTFY_TOPIC = "mysecrettopic"
SIGNING = "whsec_" + base64.b64encode(b"signing-key-for-the-masking-test").decode()
#: Every secret string the test's channels hold.
SECRETS = (HOOK_TOKEN, QUERY_TOKEN, SLACK_TOKEN, NTFY_TOPIC, SIGNING)


def echo(request: Request) -> Response:
    """A target that refuses and quotes everything it received, as some error pages do."""
    quoted = f"no route for {request.path}?{request.query} {request.body.decode()}"
    return Response(500, quoted.encode())


@pytest.fixture
def process_logging() -> Iterator[None]:
    """The processes' logging policy (``setup_logging`` applies it), undone afterwards."""
    saved = {name: logging.getLogger(name).level for name in URL_LOGGING_LIBRARIES}
    quiet_secret_loggers(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger(APPRISE_LOGGER).removeFilter(LOG_REDACTOR)


@pytest.mark.usefixtures("process_logging")
def test_no_secret_in_responses_records_or_logs(
    client: TestClient, org_a: Tenant, api_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_path = f"/services/T0AAAA/B0BBBB/{SLACK_TOKEN}"
    routes = {f"/hook/{HOOK_TOKEN}": echo, slack_path: echo, "/": echo}
    texts: list[str] = []
    with LocalHTTPServer(routes=routes) as server:
        configs = [
            ("webhook", {"url": f"{server.url}/hook/{HOOK_TOKEN}?token={QUERY_TOKEN}"}),
            ("slack", {"url": server.url + slack_path}),
            ("apprise", {"url": f"ntfy://127.0.0.1:{server.port}/{NTFY_TOPIC}"}),
        ]
        configs[0][1]["secret"] = SIGNING
        search = new_search(client, org_a)
        for type_, config in configs:
            created = client.post(
                "/channels", json={"type": type_, "config": config}, headers=org_a.headers
            )
            assert created.status_code == 201, created.text
            channel_id = created.json()["id"]
            tested = client.post(f"/channels/{channel_id}/test", headers=org_a.headers)
            assert tested.json()["kind"] == "failed", tested.text
            linked = client.post(
                f"/news/{search['id']}/channels/{channel_id}", headers=org_a.headers
            )
            assert linked.status_code == 204
            texts += [created.text, tested.text]
        delivery_ids = _deliver_one_digest(client, api_engine, org_a, search["id"])
        assert server.total_hits == 2 * len(configs)  # each refused a test and a delivery
    texts += [
        client.get(path, headers=org_a.headers).text
        for path in ("/channels", "/deliveries", *(f"/deliveries/{i}" for i in delivery_ids))
    ]
    with api_engine.connect() as conn:
        for table in ("channels", "deliveries"):
            texts.append(str(conn.execute(text(f'SELECT * FROM "{table}"')).all()))
    errors = [t for t in texts if "no route for" in t or "apprise:" in t]
    assert errors, "the targets' echoes were recorded (redacted)"
    texts.append(caplog.text)
    for secret in SECRETS:
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{secret} shown in {leaks[0][:300]}"


def _deliver_one_digest(
    client: TestClient, engine: Engine, tenant: Tenant, news_id: str
) -> list[str]:
    """One story, one digest, one delivery per linked channel, each sent once for real."""
    now = utcnow()
    with unit_of_work(engine) as session:
        search = session.get(News, news_id)
        assert search is not None
        factories.story(session, search, "https://news.example/1", relevanceScore=0.9, foundAt=now)
        planned = plan_and_create(session, tenant.id, news_id, now=now)
    ctx = client.app.state.send_context  # type: ignore[attr-defined]
    for delivery_id in planned.delivery_ids:
        deliver(engine, delivery_id, ctx)
    return list(planned.delivery_ids)
