"""The whole path on the in-process broker, SQLite and PostgreSQL: the source clock sends
a refresh, the refresh fetches a local feed and (its first news) starts the search's run,
the run plans a digest in its own transaction and enqueues the delivery after commit,
and the deliver actor posts it, signed, to a local receiver, once."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dramatiq
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from core.config import Settings
from core.db.models import Delivery, Story
from core.ingest.stories import FIRST_RUN_ANNOUNCE
from core.news.searches import create_search
from core.secrets import generate_key_string
from core.tenancy.organizations import create_organization
from scheduler.loop import Scheduler
from tests.support.delivery import link_webhook
from tests.support.http_server import LocalHTTPServer, Response
from tests.support.pipeline import settle, source_tick
from workers.broker import DELIVER_QUEUE, build_broker
from workers.deliver import enqueue_deliveries
from workers.pipeline import build_pipeline

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()


def test_run_to_signed_webhook_delivery_once(db_engine: Engine, tmp_path: Path) -> None:
    key = generate_key_string()
    settings = Settings(data_dir=tmp_path, fetch_allowlist="127.0.0.1", encryption_keys=key)
    with (
        LocalHTTPServer(directory=FEEDS) as feeds,
        LocalHTTPServer(routes={"/hook": Response()}) as receiver,
    ):
        with Session(db_engine) as s, s.begin():
            org = create_organization(s, name="Acme", slug="acme")
            news = create_search(
                s,
                org.id,
                name="Feeds",
                search_query={
                    "query": "",
                    "sources": [{"url": feeds.url_for("/miniflux-parser-large_rss.xml")}],
                },
            )
            link_webhook(s, org.id, news.id, receiver.url_for("/hook"), SECRET, key)
        broker = build_pipeline(settings, db_engine, broker=build_broker(settings))
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
        try:
            assert source_tick(db_engine, broker) == 1
            settle(broker, worker)
            # A sweep finds nothing left to deliver; a stray duplicate sends nothing.
            sent: list[list[str]] = []
            assert (
                Scheduler(
                    db_engine, lambda _: None, enqueue_deliveries=sent.append
                ).sweep_deliveries()
                == 0
            )
            with Session(db_engine) as s:
                delivery_id = s.scalars(select(Delivery.id)).one()
            enqueue_deliveries(broker, [delivery_id])
            broker.join(DELIVER_QUEUE)
            worker.join()
        finally:
            worker.stop()
        assert receiver.hits["/hook"] == 1
        [request] = receiver.requests
    Webhook(SECRET).verify(request.body, request.headers)
    assert len(json.loads(request.body)["digest"]["stories"]) == FIRST_RUN_ANNOUNCE
    with Session(db_engine) as s:
        assert s.scalars(select(Delivery.state)).one() == "sent"
        delivered = s.scalar(select(func.count()).where(Story.wasDelivered))
    assert delivered == FIRST_RUN_ANNOUNCE
