"""Clustering never hides a story that should be delivered (RELIABILITY rows 67 and 68):
the real run step on PostgreSQL fetches a local feed on simulated days, plans, and a
webhook receiver on 127.0.0.1 counts what readers got."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db.models import Channel, NewsChannel, Story
from core.delivery import channels as ch
from core.delivery.deliveries import SendContext, deliver
from core.fetch import GuardPolicy, build_client
from core.fetch.client import GuardedClient
from core.news.searches import create_search
from core.secrets import Keyring, generate_key_string
from core.tenancy.organizations import create_organization
from tests.support import LocalHTTPServer, Request, Response
from tests.support.runs import ingest_at
from tests.support.stories_text import BRIEFINGS, RATES

DAY1 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"c" * 32).decode()
POLICY = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=5, read_timeout_s=2)


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


@dataclass
class Item:
    title: str
    link: str
    lead: str
    published: datetime


def rss(items: list[Item]) -> bytes:
    body = "".join(
        f"<item><title>{escape(i.title)}</title><link>{escape(i.link)}</link>"
        f"<description>{escape(i.lead)}</description>"
        f"<pubDate>{format_datetime(i.published)}</pubDate></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>desk</title><link>https://desk.example/</link>{body}</channel></rss>"
    ).encode()


@dataclass
class Desk:
    """A search following one local feed, delivering to one signed webhook receiver."""

    engine: Engine
    org_id: str
    news_id: str
    receiver: LocalHTTPServer
    client: GuardedClient
    ctx: SendContext
    feed: list[Item] = field(default_factory=list)

    def run(self, now: datetime) -> list[dict[str, Any]]:
        """One run of the search at ``now`` (the real step), then its deliveries; returns
        the stories the receiver got from this run."""
        before = len(self.receiver.requests)
        stats = ingest_at(self.engine, self.org_id, self.news_id, self.client, now)
        for delivery_id in stats["deliveryIds"]:
            result = deliver(
                self.engine, delivery_id, self.ctx, clock=lambda: now, rng=random.Random(1)
            )
            assert result.outcome is not None and result.outcome.kind == "sent"
        received = []
        for request in self.receiver.requests[before:]:
            received.extend(json.loads(request.body)["digest"]["stories"])
        return received

    def stories(self) -> dict[str, Story]:
        with Session(self.engine) as s:
            rows = s.scalars(select(Story).where(Story.newsId == self.news_id)).all()
            for row in rows:
                s.expunge(row)
        return {row.url: row for row in rows}


@pytest.fixture
def desk_for(pg_engine: Engine) -> Iterator[Any]:
    keyring = Keyring([generate_key_string()])
    with (
        LocalHTTPServer() as feeds,
        LocalHTTPServer(routes={"/hook": Response()}) as receiver,
        build_client(POLICY) as client,
    ):

        def make(relevance: dict[str, Any] | None = None) -> Desk:
            desk = Desk(pg_engine, "", "", receiver, client, SendContext(keyring, client, POLICY))

            def serve(_: Request) -> Response:
                return Response(
                    body=rss(desk.feed), headers={"Content-Type": "application/rss+xml"}
                )

            feeds.routes["/feed"] = serve
            with Session(pg_engine) as s, s.begin():
                org = create_organization(s, name="Desk", slug="desk")
                news = create_search(
                    s,
                    org.id,
                    name="desk",
                    search_query={"query": "", "sources": [{"url": feeds.url_for("/feed")}]},
                    relevance_settings={"threshold": 0.0, **(relevance or {})},
                )
                channel = Channel(organizationId=org.id, type="webhook", name="hook", config={})
                s.add(channel)
                s.flush()
                config = ch.validate_config(
                    "webhook", {"url": receiver.url_for("/hook"), "secret": SECRET}
                )
                channel.config = ch.seal_config("webhook", config, keyring, org.id, channel.id)
                s.add(NewsChannel(organizationId=org.id, newsId=news.id, channelId=channel.id))
                desk.org_id, desk.news_id = org.id, news.id
            return desk

        yield make


def test_every_issue_of_a_recurring_headline_is_delivered(desk_for):
    """Row 67: a daily briefing with a new URL and a new lead every day, and a daily photo
    without a lead: three runs on three days, every issue reaches the receiver."""
    desk = desk_for()
    got = []
    for day, lead in enumerate(BRIEFINGS):
        at = DAY1 + timedelta(days=day)
        desk.feed += [
            Item(
                "Here's what you need to know today", f"https://news.example/brief/{day}", lead, at
            ),
            Item("Photo of the day", f"https://photos.example/{day}", "", at),
        ]
        got.append(desk.run(at + timedelta(hours=1)))
    assert [sorted(s["url"] for s in run) for run in got] == [
        [f"https://news.example/brief/{day}", f"https://photos.example/{day}"] for day in range(3)
    ]
    assert all(story.duplicateOfId is None for story in desk.stories().values())


WIRE = Item(
    "Central bank holds rates steady (Reuters)", "https://wire.example.org/rates", RATES, DAY1
)
COPY = Item(
    "Central Bank Holds Rates Steady",
    "https://courier.example.net/rates",
    RATES,
    DAY1 + timedelta(hours=2),
)
FILLER = [
    Item(
        f"Harbor story number {n} of the week",
        f"https://harbor.example/{n}",
        f"Harbor news {n}.",
        DAY1 + timedelta(minutes=n + 1),
    )
    for n in range(5)
]


@pytest.mark.parametrize(
    ("reason", "relevance", "first_feed"),
    [
        ("excluded source", {"excludedSources": ["wire.example.org"]}, [WIRE]),
        (
            "excluded term",
            {"excludedTerms": ["sponsored"]},
            [Item(WIRE.title, WIRE.link, RATES + " Sponsored.", DAY1)],
        ),
        ("first-run backlog", {}, [WIRE, *FILLER]),
    ],
)
def test_a_copy_of_a_filtered_first_story_is_delivered_if_it_passes(
    desk_for, reason, relevance, first_feed
):
    """Row 68: the cluster's first story was filtered; the copy that joins it in the next
    run passes the rules itself, so the receiver gets it."""
    desk = desk_for(relevance)
    desk.feed = list(first_feed)
    first = desk.run(DAY1 + timedelta(hours=1))
    assert WIRE.link not in {s["url"] for s in first}
    desk.feed.append(COPY)
    second = desk.run(DAY1 + timedelta(hours=3))
    assert [s["url"] for s in second] == [COPY.link]
    stories = desk.stories()
    wire, copy = stories[WIRE.link], stories[COPY.link]
    assert wire.isFiltered and not copy.isFiltered
    assert copy.clusterId == wire.id and copy.duplicateOfId is None and copy.wasDelivered


def test_wire_copies_go_out_once_with_also_reported_by(desk_for):
    """Two copies in one run: one story, the other as "also reported by"; a third copy
    after the digest went out is not sent again and says why."""
    desk = desk_for()
    desk.feed = [WIRE, COPY]
    got = desk.run(DAY1 + timedelta(hours=3))
    assert len(got) == 1
    lead_url = got[0]["url"]
    other = ({WIRE.link, COPY.link} - {lead_url}).pop()
    assert [a["url"] for a in got[0]["alsoReportedBy"]] == [other]
    late = Item(
        "Central bank holds rates steady",
        "https://late.example.com/rates",
        RATES,
        DAY1 + timedelta(hours=5),
    )
    desk.feed.append(late)
    assert desk.run(DAY1 + timedelta(hours=6)) == []
    hidden = desk.stories()[late.link]
    assert hidden.duplicateOfId is not None and not hidden.wasDelivered
    assert hidden.explanation is not None
    assert hidden.explanation["delivery"].startswith(
        'not sent on its own: also reported as "Central'
    )
