"""Row 46 with real processes: a worker SIGKILLed while its webhook POST is in flight.
The delivery is claimed again after its lease (scheduler sweeper, real Redis), sent
again with the same webhook-id, and recorded sent exactly once."""

from __future__ import annotations

import base64
import signal
import threading
from pathlib import Path

from sqlalchemy import Engine, select

from core.clock import utcnow
from core.config import Settings
from core.db.models import Channel, Delivery, NewsChannel
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.digests import plan_and_create
from core.secrets import parse_keys
from tests.e2e.test_processes import Processes, engine, procs, wait_for  # noqa: F401
from tests.support import factories
from tests.support.http_server import LocalHTTPServer, RawConnection
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB
from workers.broker import build_broker
from workers.deliver import enqueue_deliveries

KEY = "A" * 43
SECRET = "whsec_" + base64.b64encode(b"e" * 32).decode()


def test_worker_killed_mid_send_leaves_one_sent_record(
    engine: Engine,  # noqa: F811
    procs: Processes,  # noqa: F811
    tmp_path: Path,
) -> None:
    first_arrived = threading.Event()

    def receiver(conn: RawConnection) -> None:
        if not first_arrived.is_set():
            first_arrived.set()
            conn.sleep(30)  # the first worker dies waiting for this answer
            return
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    env = {"NEWSMON_DELIVERY_LEASE_SECONDS": "2", "NEWSMON_FETCH_ALLOWLIST": "127.0.0.1"}
    with LocalHTTPServer(raw={"/hook": receiver}) as server:
        with unit_of_work(engine) as session:
            organization = factories.org(session)
            search = factories.news(session, organization)
            channel = Channel(organizationId=organization.id, type="webhook", config={})
            session.add(channel)
            session.flush()
            valid = ch.validate_config(
                "webhook", {"url": server.url_for("/hook"), "secret": SECRET}
            )
            channel.config = ch.seal_config(
                "webhook", valid, parse_keys(KEY), organization.id, channel.id
            )
            session.add(
                NewsChannel(organizationId=organization.id, newsId=search.id, channelId=channel.id)
            )
            factories.story(session, search, "https://news.example/1", foundAt=utcnow())
        with unit_of_work(engine) as session:
            [delivery_id] = plan_and_create(
                session, organization.id, search.id, now=utcnow()
            ).delivery_ids
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}",
            encryption_keys=KEY,
        )
        broker = build_broker(settings, namespace=procs.namespace)
        doomed = procs.start("worker", **env)
        enqueue_deliveries(broker, [delivery_id])
        wait_for(first_arrived.is_set, "the first POST")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()

        procs.start("worker", **env)
        procs.start("scheduler", NEWSMON_SCHEDULER_TICK_SECONDS="0.2", **env)

        def state() -> str:
            with unit_of_work(engine) as session:
                return str(session.scalar(select(Delivery.state)))

        wait_for(lambda: state() == "sent", "the delivery to be sent")
        requests = list(server.requests)
    assert [r.headers["webhook-id"] for r in requests] == [delivery_id, delivery_id]
    with unit_of_work(engine) as session:
        rows = session.scalars(select(Delivery)).all()
        assert [(r.state, r.attempts) for r in rows] == [("sent", 2)]
