"""URL variants through the real run step on PostgreSQL (RELIABILITY rows 69 and 70).

Local feeds serve every variant of a few articles (http/https, www, m., amp., /amp,
?amp=1, tracking parameters, malformed schemes, FeedBurner links with origLink) in
several feeds over several runs; a signed-webhook receiver counts what arrives. Each
article arrives once, attributed to its own site; articles told apart only by a hashbang
route, a post anchor or a path segment named ``amp`` all arrive.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import dramatiq
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.config import Settings
from core.db.models import Source, Story
from core.fetch import GuardPolicy, build_client
from core.news.searches import create_search
from core.secrets import generate_key_string
from core.tenancy.organizations import create_organization
from tests.support.delivery import link_webhook
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.pipeline import run_now, settle
from tests.support.runs import ingest_at
from workers.broker import build_broker
from workers.pipeline import build_pipeline

SECRET = "whsec_" + base64.b64encode(b"v" * 32).decode()
SITE = "www.daily.example"
PROXY = "http://feedproxy.google.com/~r/DailyExample/~3"

#: Articles by short name: (title, lead, URL as the site publishes it).
ARTICLES = {
    "council": (
        "Council approves the harbour budget",
        "Councillors voted 9 to 2 for the harbour plan after a long night session.",
        f"https://{SITE}/2026/11/council-approves-harbour-budget/",
    ),
    "flood": (
        "River flood warnings for the valley towns",
        "Forecasters expect the river to crest on Thursday morning, officials said.",
        f"https://{SITE}/2026/11/river-flood-warnings/",
    ),
    "strike": (
        "Rail strike called off after late talks",
        "Unions and operators reached a deal shortly before midnight on Sunday.",
        f"https://{SITE}/2026/11/rail-strike-called-off/",
    ),
    # Two articles under one page, told apart by their hashbang routes.
    "map1": (
        "Live map: polling stations open today",
        "Find the nearest polling station and its opening hours on our interactive map.",
        "https://app.daily.example/#!/story/1",
    ),
    "map2": (
        "Live map: road closures for the marathon",
        "Streets along the marathon route close from six in the morning until three.",
        "https://app.daily.example/#!/story/2",
    ),
    # A listing and an article whose last path segment is named "amp".
    "guitars": (
        "Guitar reviews, the best of the year",
        "Our testers played forty guitars this year; these are the ones they kept.",
        f"https://{SITE}/reviews/guitar/",
    ),
    "amp": (
        "Amp review: a small valve combo tested",
        "A fifteen-watt valve amplifier that sounds bigger than it looks, with one flaw.",
        f"https://{SITE}/reviews/guitar/amp",
    ),
    # Posts of a one-page blog told apart only by their anchors (#a1 alone in run 1).
    "a1": (
        "Morning note on the ferry timetable",
        "The winter ferry timetable starts next week with two fewer evening sailings.",
        "http://notes.daily.example/2026/11/24.html#a1",
    ),
    "a2": (
        "Evening note on the library hours",
        "The central library stays open until nine on weekdays from December.",
        "http://notes.daily.example/2026/11/24.html#a2",
    ),
}
TITLES = Counter(title for title, _, _ in ARTICLES.values())


def variants(name: str) -> list[str]:
    """The ways feeds publish one article's URL."""
    url = ARTICLES[name][2]
    bare = url.replace("https://www.", "")
    return [
        url.replace("https://", "http://"),
        f"https://{bare}",
        f"https://m.{bare}",
        f"https://amp.{bare}",
        f"{url}amp/",
        f"{url}?amp=1",
        f"{url}?utm_source=rss&utm_medium=feed&ITO=1490&ns_campaign=x",
        f"{url}?fbclid=IwAR0&gclid=x&mc_cid=1&mc_eid=2#more-4410",
        url.replace("https://", "http://http://"),
        url.replace("https://", "http:/"),
    ]


def item(name: str, link: str | None = None, orig: str | None = None) -> str:
    """An RSS item of article ``name``, at its own URL unless ``link`` is given."""
    title, lead, url = ARTICLES[name]
    orig_link = f"<feedburner:origLink>{escape(orig)}</feedburner:origLink>" if orig else ""
    return (
        f"<item><title>{title}</title><link>{escape(link or url)}</link>"
        f"<description>{lead}</description>{orig_link}</item>"
    )


def burner(name: str, tracking: str = "") -> str:
    """A FeedBurner copy of article ``name``: a feedproxy link, the origLink beside it."""
    return item(name, f"{PROXY}/{name}-token/{name}/", ARTICLES[name][2] + tracking)


def rss(items: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0"><channel>'
        f"<title>Feed</title><link>https://{SITE}/</link>{''.join(items)}</channel></rss>"
    ).encode()


#: What each feed serves in each run: the site's own feed, a FeedBurner copy (feedproxy
#: links, an origLink with tracking), and an aggregator's that carries every variant.
RUNS: list[dict[str, list[str]]] = [
    {
        "site": [item("council"), item("map1"), item("a1")],
        "burner": [burner("flood", "?utm_source=feedburner&utm_medium=feed")],
        "mix": [item("council", link) for link in variants("council")[:4]],
    },
    {
        "site": [item(name) for name in ("a1", "a2", "map1", "map2", "guitars", "amp")],
        "burner": [burner("strike"), burner("flood")],
        "mix": [item(name, link) for name in ("council", "flood") for link in variants(name)],
    },
    {
        "site": [],
        "burner": [],
        "mix": [item("a2")]
        + [item(name, link) for name in ("strike", "council", "flood") for link in variants(name)],
    },
]


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


class Feeds:
    """Three feeds whose content the test swaps between runs."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def serve(self, request: Request) -> Response:
        name = request.path.strip("/").removesuffix(".xml")
        return Response(body=self.bodies[name], headers={"Content-Type": "application/rss+xml"})

    def load(self, run: dict[str, list[str]]) -> None:
        self.bodies = {name: rss(items) for name, items in run.items()}


def delivered(receiver: LocalHTTPServer) -> list[dict[str, Any]]:
    return [
        story
        for request in receiver.requests
        for story in json.loads(request.body)["digest"]["stories"]
    ]


def test_each_article_arrives_once_and_distinct_articles_all_arrive(
    pg_engine: Engine, tmp_path: Path
) -> None:
    key = generate_key_string()
    settings = Settings(data_dir=tmp_path, fetch_allowlist="127.0.0.1", encryption_keys=key)
    feeds = Feeds()
    routes = {f"/{name}.xml": feeds.serve for name in RUNS[0]}
    with (
        LocalHTTPServer(routes=routes) as server,
        LocalHTTPServer(routes={"/hook": Response()}) as receiver,
    ):
        org_id, news_id = one_search(
            pg_engine, [server.url_for(f"/{name}.xml") for name in RUNS[0]]
        )
        with Session(pg_engine) as s, s.begin():
            link_webhook(s, org_id, news_id, receiver.url_for("/hook"), SECRET, key)
        broker = build_pipeline(settings, pg_engine, broker=build_broker(settings))
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
        try:
            for run in RUNS:
                feeds.load(run)
                with Session(pg_engine) as s, s.begin():  # time has passed
                    s.execute(update(Source).values(nextFetchAt=None, lastFetchedAt=None))
                run_now(pg_engine, broker, org_id, news_id)
                settle(broker, worker)
        finally:
            worker.stop()
        stories = delivered(receiver)
    arrived = Counter(story["title"] for story in stories)
    assert arrived == TITLES, arrived  # every article, each exactly once
    by_title = {story["title"]: story for story in stories}
    for title, _, url in ARTICLES.values():
        assert by_title[title]["source"] == url.split("/")[2]
    for name in ("flood", "strike"):  # the origLink, tracking removed
        assert by_title[ARTICLES[name][0]]["url"] == ARTICLES[name][2]
    with Session(pg_engine) as s:  # one stored story per article, not only one delivered
        stored = Counter(s.scalars(select(Story.title).where(Story.newsId == news_id)))
    assert stored == TITLES, stored


@pytest.fixture
def feedburner_server() -> Iterator[LocalHTTPServer]:
    body = rss(RUNS[1]["burner"])
    with LocalHTTPServer(routes={"/burner.xml": Response(body=body)}) as server:
        yield server


@pytest.mark.parametrize(
    ("query", "settings", "passes"),
    [
        ("site:daily.example", {}, True),
        ("site:feedproxy.google.com", {}, False),
        ("", {"excludedSources": ["daily.example"]}, False),
        ("", {"excludedSources": ["feedproxy.google.com"]}, True),
    ],
)
def test_feedburner_items_are_matched_and_excluded_by_the_article_host(
    pg_engine: Engine,
    feedburner_server: LocalHTTPServer,
    query: str,
    settings: dict[str, Any],
    passes: bool,
) -> None:
    burner = feedburner_server.url_for("/burner.xml")
    org_id, news_id = one_search(pg_engine, [burner], query=query, settings=settings)
    run_step(pg_engine, org_id, news_id)
    with Session(pg_engine) as s:
        stories = s.execute(
            select(Story.isFiltered, Story.sourceName).where(Story.newsId == news_id)
        ).all()
    assert len([row for row in stories if not row.isFiltered]) == (2 if passes else 0)
    assert {row.sourceName for row in stories} <= {SITE}


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"


def run_step(engine: Engine, org_id: str, news_id: str) -> None:
    """One run of the search through the run's phases (fetch, store, stories, plan)."""
    with Session(engine) as s, s.begin():
        s.execute(update(Source).values(nextFetchAt=None))  # time has passed
    with build_client(GuardPolicy.from_allowlist(["127.0.0.1"])) as client:
        ingest_at(engine, org_id, news_id, client, utcnow())


def titles(engine: Engine, news_id: str) -> Counter[str]:
    with Session(engine) as s:
        return Counter(s.scalars(select(Story.title).where(Story.newsId == news_id)))


def one_search(
    engine: Engine, urls: list[str], query: str = "", settings: dict[str, Any] | None = None
) -> tuple[str, str]:
    """An organization and its search following ``urls``: (organization id, search id)."""
    with Session(engine) as s, s.begin():
        org = create_organization(s, name="Daily", slug="daily")
        news = create_search(
            s,
            org.id,
            name="s",
            search_query={"query": query, "sources": [{"url": u} for u in urls]},
            relevance_settings=settings,
        )
        return org.id, news.id


def test_a_feedburner_copy_without_orig_link_is_the_same_story_by_its_id(
    pg_engine: Engine,
) -> None:
    # The Alternate capture links FeedBurner tokens and no origLink; its ids are the
    # original feed's tag: ids.
    with LocalHTTPServer(directory=FIXTURES) as server:
        org_id, news_id = one_search(
            pg_engine,
            [
                server.url_for("/feedjira-PaulDixExplainsNothing.xml"),
                server.url_for("/feedjira-PaulDixExplainsNothingAlternate.xml"),
            ],
        )
        run_step(pg_engine, org_id, news_id)
    found = titles(pg_engine, news_id)
    assert len(found) == 5 and set(found.values()) == {1}, found


def test_an_edited_slug_is_the_same_story_and_a_shared_id_merges_nothing(
    pg_engine: Engine,
) -> None:
    def doc(*items: tuple[str, str, str]) -> bytes:
        body = "".join(
            f"<item><title>{t}</title><link>{link}</link><guid>{guid}</guid>"
            f"<description>{t}, told at length in its first lines.</description></item>"
            for t, link, guid in items
        )
        return f'<rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()

    bodies = {"feed": b""}
    with LocalHTTPServer(routes={"/feed.xml": lambda _: Response(body=bodies["feed"])}) as srv:
        org_id, news_id = one_search(pg_engine, [srv.url_for("/feed.xml")])
        bodies["feed"] = doc(("Mayor resigns", f"https://{SITE}/mayor-to-resign", "tag:d,1:1"))
        run_step(pg_engine, org_id, news_id)
        bodies["feed"] = doc(
            ("Mayor resigns after vote", f"https://{SITE}/mayor-resigns", "tag:d,1:1"),
            # A feed that gives several items one id: the id names none of them.
            ("Tram line opens", f"https://{SITE}/tram", f"https://{SITE}/feed/"),
            ("Bridge closes", f"https://{SITE}/bridge", f"https://{SITE}/feed/"),
        )
        run_step(pg_engine, org_id, news_id)
    assert titles(pg_engine, news_id) == Counter(
        ["Mayor resigns", "Tram line opens", "Bridge closes"]
    )
