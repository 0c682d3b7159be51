"""Operators see failed deliveries of every tenant and replay them (API and /ops): the
delivery goes back to pending, the deliver actor sends it again through the real Redis
broker to a local receiver, and the replay is in the organization's audit log. A
delivered one is refused with a clear 409."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from core.config import Settings
from core.db.models import AuditLog
from core.db.session import unit_of_work
from core.tenancy.api_keys import create_api_key, create_operator_key
from tests.api.conftest import ALL_PERMISSIONS, CLIENT_ADDRESS, FakeClock
from tests.api.routes.test_ops_page import FORM, OWN_ORIGIN, login
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    SECRET,
    World,
    drain_deliveries,
    redis_broker,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Request, Response
from workers.broker import DELIVER_QUEUE
from workers.deliver import declare_deliver_actor


@pytest.fixture
def db_engine(pg_engine: Engine) -> Engine:
    """PostgreSQL only: production mode, with the Redis broker."""
    return pg_engine


@pytest.fixture
def broker(redis_url: str, pg_engine: Engine) -> Iterator[dramatiq.Broker]:
    with redis_broker(pg_engine, redis_url, "newsmon-replay") as built:
        yield built


def refusing_once() -> tuple[dict[str, int], Callable[[Request], Response]]:
    """A receiver that refuses the first post (400: a permanent failure) and takes the
    rest."""
    seen = {"posts": 0}

    def handle(_request: Request) -> Response:
        seen["posts"] += 1
        return Response(status=400, body=b"bad") if seen["posts"] == 1 else Response(body=b"ok")

    return seen, handle


def failed_and_sent(world: World, server: LocalHTTPServer) -> tuple[str, str]:
    """One delivery that failed for good (to ``/flaky``) and one sent (to ``/ok``)."""
    flaky = world.channel("webhook", {"url": server.url_for("/flaky"), "secret": SECRET})
    world.channel("webhook", {"url": server.url_for("/ok"), "secret": SECRET})
    world.stories(1)
    ids = world.plan()
    for delivery_id in ids:
        world.deliver(delivery_id)
    failed = next(i for i in ids if world.row(i).channelId == flaky)
    sent = next(i for i in ids if i != failed)
    assert (world.row(failed).state, world.row(sent).state) == ("failed", "sent")
    return failed, sent


def test_operator_lists_failed_deliveries_and_a_replay_delivers_it(
    world: World, broker: dramatiq.Broker, pg_engine: Engine
) -> None:
    with unit_of_work(pg_engine) as session:
        operator = {"x-api-key": create_operator_key(session, name="ops").key}
        tenant = {
            "x-api-key": create_api_key(
                session, world.org_id, name="t", permissions=ALL_PERMISSIONS
            ).key
        }
    declare_deliver_actor(broker, pg_engine, lambda: world.ctx)
    seen, flaky = refusing_once()
    app = create_app(Settings(), pg_engine, broker=broker, clock=FakeClock())
    with (
        LocalHTTPServer(routes={"/flaky": flaky, "/ok": Response()}) as server,
        TestClient(app, client=(CLIENT_ADDRESS, 50000)) as client,
    ):
        failed, sent = failed_and_sent(world, server)
        listed = client.get("/operator/deliveries/failed", headers=operator).json()
        [item] = listed["items"]
        assert (item["id"], item["organizationId"], item["lastStatusCode"]) == (
            failed,
            world.org_id,
            400,
        )
        assert item["channelType"] == "webhook" and SECRET not in str(listed)
        assert client.get("/operator/deliveries/failed", headers=tenant).status_code == 403

        delivered = client.post(f"/operator/deliveries/{sent}/replay", headers=operator)
        assert delivered.status_code == 409
        assert delivered.json()["error"]["message"] == (
            f"delivery {sent} was delivered; there is nothing to replay"
        )
        assert client.post("/operator/deliveries/nope/replay", headers=operator).status_code == 404

        replayed = client.post(
            f"/operator/deliveries/{failed}/replay",
            headers={**operator, "x-request-id": "replay-1"},
        )
        assert replayed.status_code == 202, replayed.text
        assert replayed.json() == {"id": failed, "state": "pending", "enqueued": True}
        drain_deliveries(broker)
        assert seen["posts"] == 2
        assert world.row(failed).state == "sent"
        attempts = client.get(f"/operator/deliveries/{failed}/attempts", headers=operator).json()
        assert [(a["outcome"], a["statusCode"]) for a in attempts] == [
            ("failed", 400),
            ("sent", 200),
        ]
        assert client.get("/operator/deliveries/failed", headers=operator).json()["items"] == []
    with unit_of_work(pg_engine) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "delivery.replay")).one()
        assert (audit.organizationId, audit.actorType, audit.targetId, audit.requestId) == (
            world.org_id,
            "operator",
            failed,
            "replay-1",
        )
        assert audit.ipAddress == CLIENT_ADDRESS


def test_the_ops_page_lists_failed_deliveries_and_its_replay_button_requeues(
    world: World, broker: dramatiq.Broker, pg_engine: Engine
) -> None:
    with unit_of_work(pg_engine) as session:
        operator_key = create_operator_key(session, name="ops").key
    app = create_app(Settings(), pg_engine, broker=broker, clock=FakeClock())
    _, flaky = refusing_once()
    with (
        LocalHTTPServer(routes={"/flaky": flaky, "/ok": Response()}) as server,
        TestClient(app) as client,
    ):
        failed, sent = failed_and_sent(world, server)
        login(client, operator_key)
        page = client.get("/ops").text
        assert "Failed deliveries" in page and failed in page and sent not in page

        def press(delivery_id: str) -> str:
            answer = client.post(
                "/ops/deliveries/replay",
                content=f"delivery_id={delivery_id}",
                headers={**FORM, "origin": OWN_ORIGIN},
                follow_redirects=True,
            )
            assert answer.status_code == 200
            text: str = answer.text
            return text

        assert f"Not replayed: delivery {sent} was delivered" in press(sent)
        assert f"Replayed delivery {failed}." in press(failed)
        assert world.row(failed).state == "pending"  # and its message is on the queue
        assert broker.client.llen(f"{broker.namespace}:{DELIVER_QUEUE}") == 1  # type: ignore[attr-defined]
        assert f"Not replayed: delivery {failed} is pending" in press(failed)
    with unit_of_work(pg_engine) as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.organizationId == world.org_id)
        ).all()
    assert actions == ["delivery.replay"]
