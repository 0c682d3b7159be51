"""Usage counted where things happen, on SQLite and PostgreSQL: the real pipeline (source
clock -> refresh -> run -> deliver) counts fetches for every organization following the
shared source, the stories each run stored and each digest sent; failed sends and
deferred refreshes count nothing."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import dramatiq
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import Delivery, Source, Story
from core.db.session import unit_of_work
from core.ingest.sources import Fetched, record_fetch
from core.news.searches import create_search
from core.secrets import generate_key_string
from core.tenancy.organizations import create_organization
from core.usage.months import month_of
from core.usage.report import usage_months
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    SECRET,
    START,
    World,
    link_webhook,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Response
from tests.support.pipeline import settle, source_tick
from workers.broker import build_broker
from workers.pipeline import build_pipeline

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
HOOK_SECRET = "whsec_" + base64.b64encode(b"u" * 32).decode()


def _usage(engine: Engine, organization_id: str, month: str) -> dict[str, int]:
    with Session(engine) as s:
        [found] = usage_months(s, organization_id, [month])
    return {
        "fetches": found.fetches,
        "storiesStored": found.storiesStored,
        "deliveriesSent": found.deliveriesSent,
        "apiRequests": found.apiRequests,
    }


def test_pipeline_counts_shared_fetches_stories_and_deliveries_per_organization(
    db_engine: Engine, tmp_path: Path
) -> None:
    key = generate_key_string()
    settings = Settings(data_dir=tmp_path, fetch_allowlist="127.0.0.1", encryption_keys=key)
    with (
        LocalHTTPServer(directory=FEEDS) as feeds,
        LocalHTTPServer(routes={"/hook": Response()}) as receiver,
    ):
        feed = {"query": "", "sources": [{"url": feeds.url_for("/miniflux-parser-large_rss.xml")}]}
        orgs: dict[str, str] = {}
        with Session(db_engine) as s, s.begin():
            for slug in ("acme", "globex", "idle"):
                org = create_organization(s, name=slug, slug=slug)
                news = create_search(s, org.id, name="Feeds", search_query=feed)
                orgs[slug] = org.id
                if slug == "idle":  # follows the source with a paused search: not its fetch
                    news.isActive = False
                else:
                    link_webhook(s, org.id, news.id, receiver.url_for("/hook"), HOOK_SECRET, key)
        broker = build_pipeline(settings, db_engine, broker=build_broker(settings))
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
        try:
            assert source_tick(db_engine, broker) == 1  # one shared source, one fetch
            settle(broker, worker)
        finally:
            worker.stop()
        assert receiver.hits["/hook"] == 2  # a digest to each active organization
    with Session(db_engine) as s:
        fetched_at = s.scalars(select(Source.lastFetchedAt)).one()
        counted = select(Story.organizationId, func.count()).group_by(Story.organizationId)
        stored = {org_id: n for org_id, n in s.execute(counted)}
        assert set(s.scalars(select(Delivery.state))) == {"sent"}
    assert fetched_at is not None
    month = month_of(fetched_at)
    for slug in ("acme", "globex"):
        assert stored[orgs[slug]] > 0
        assert _usage(db_engine, orgs[slug], month) == {
            "fetches": 1,
            "storiesStored": stored[orgs[slug]],
            "deliveriesSent": 1,
            "apiRequests": 0,
        }
    assert _usage(db_engine, orgs["idle"], month) == dict.fromkeys(
        ("fetches", "storiesStored", "deliveriesSent", "apiRequests"), 0
    )


def test_a_deferred_refresh_counts_no_fetch_and_months_stay_apart(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as s:
        org = create_organization(s, name="Acme", slug="acme")
        create_search(
            s,
            org.id,
            name="Feeds",
            search_query={"query": "", "sources": [{"url": "https://feeds.example/a.xml"}]},
        )
        source_id = s.scalars(select(Source.id)).one()
        org_id = org.id
    december = START.replace(month=12, day=31, hour=23)
    january = START.replace(year=START.year + 1, month=1, day=1, hour=0, minute=1)
    with unit_of_work(db_engine) as s:  # its host was busy: no request was made
        record_fetch(s, source_id, Fetched(None, busy=timedelta(seconds=2)), december)
    with unit_of_work(db_engine) as s:
        record_fetch(s, source_id, Fetched(500, error="HTTP 500"), december)
    with unit_of_work(db_engine) as s:
        record_fetch(s, source_id, Fetched(304), january)
    assert _usage(db_engine, org_id, month_of(december))["fetches"] == 1
    assert _usage(db_engine, org_id, month_of(january))["fetches"] == 1


def test_a_failed_send_counts_no_delivery_and_a_sent_one_counts_once(world: World) -> None:
    with LocalHTTPServer(routes={"/down": Response(status=500), "/up": Response()}) as server:
        down = world.channel("webhook", {"url": server.url_for("/down"), "secret": SECRET})
        world.channel("webhook", {"url": server.url_for("/up"), "secret": SECRET})
        world.stories(2)
        delivery_ids = world.plan()
        outcomes = {}
        for delivery_id in delivery_ids:
            result = world.deliver(delivery_id)
            assert result.outcome is not None
            outcomes[world.row(delivery_id).channelId] = result.outcome.kind
            world.deliver(delivery_id)  # a duplicate message: nothing to claim, nothing counted
    assert outcomes[down] == "failed"
    assert sorted(outcomes.values()) == ["failed", "sent"]
    assert _usage(world.engine, world.org_id, month_of(START))["deliveriesSent"] == 1
