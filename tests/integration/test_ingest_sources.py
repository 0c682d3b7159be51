"""Ingest at the source level over real HTTP on 127.0.0.1 (RELIABILITY rows 1-29).

Every corpus feed through the full path; providers served from recorded-shaped answers;
redirect chains, slow drip, oversized and gzip-bomb bodies, malformed XML and wrong
charsets end as a clear error (or a warning) on the source; a 20,000-item feed is bounded;
near-duplicates of one search share a cluster. All under the tripwire.
"""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from core.db.models import Entry, Source, Story
from core.feeds import MAX_ENTRIES_PER_FEED, parse_feed
from core.fetch import GuardPolicy, build_client
from core.fetch.client import GuardedClient
from core.news.searches import create_search
from core.tenancy.organizations import create_organization
from tests.support import LocalHTTPServer, Request, Response, raw_response, redirect, trickle
from tests.support.runs import ingest_at

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FEEDS = FIXTURES / "feeds"
PROVIDERS = FIXTURES / "providers"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: Short limits, so the hostile-server tests finish in seconds.
POLICY = GuardPolicy.from_allowlist(
    ["127.0.0.1"], deadline_s=2, read_timeout_s=1, connect_timeout_s=1, max_body_bytes=256 * 1024
)


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


@pytest.fixture
def client() -> Iterator[GuardedClient]:
    with build_client(POLICY) as guarded:
        yield guarded


def search(engine: Engine, sources: list[dict[str, str]], query: str = "", **kw) -> tuple[str, str]:
    with Session(engine) as s, s.begin():
        org = create_organization(s, name="o", slug="o")
        news = create_search(
            s, org.id, name="s", search_query={"query": query, "sources": sources}, **kw
        )
        return org.id, news.id


def run(engine: Engine, org_id: str, news_id: str, client: GuardedClient) -> dict[str, Any]:
    return ingest_at(engine, org_id, news_id, client, NOW)


def one_source(engine: Engine) -> Source:
    with Session(engine) as s:
        return s.scalars(select(Source)).one()


def test_every_corpus_feed_parses_or_records_a_clear_error(db_engine):
    names = sorted(p.name for p in FEEDS.iterdir() if p.suffix != ".tsv")
    with (
        LocalHTTPServer(directory=FEEDS) as server,
        build_client(
            GuardPolicy.from_allowlist(["127.0.0.1"])  # production limits
        ) as client,
    ):
        org, news = search(db_engine, [{"url": server.url_for(f"/{n}")} for n in names])
        stats = run(db_engine, org, news, client)
    assert stats["sources"] == len(names)
    with Session(db_engine) as s:
        stored = dict(
            s.execute(select(Entry.sourceId, func.count()).group_by(Entry.sourceId)).all()
        )
        sources = {src.url.rsplit("/", 1)[1]: src for src in s.scalars(select(Source))}
    for name in names:
        body, source = (FEEDS / name).read_bytes(), sources[name]
        if source.status == "failing":
            assert source.lastError and source.lastError["error"].startswith("not a feed"), name
            continue
        reference = feedparser.parse(io.BytesIO(body))
        ours = parse_feed(body, {}, f"http://127.0.0.1/{name}")
        if not name.endswith(".json"):  # feedparser reads no JSON Feed
            assert len(ours.entries) == min(len(reference.entries), MAX_ENTRIES_PER_FEED), name
        linked = {e.canonical_url for e in ours.entries if e.canonical_url}
        assert stored.get(source.id, 0) == len(linked), name
    failing = [n for n, src in sources.items() if src.status == "failing"]
    assert len(failing) <= 3, failing  # only the documents that are no feed at all


def test_overlapping_corpus_feeds_give_each_story_once(db_engine, client):
    overlapping = [
        "rsparser-ranchero-DaringFireball.atom",
        "rsparser-ranchero-DaringFireball.json",
        "rsparser-ranchero-DaringFireball.rss",
        "feedjira-PaulDixExplainsNothing.xml",
        "feedjira-PaulDixExplainsNothingAlternate.xml",
    ]
    with LocalHTTPServer(directory=FEEDS) as server:
        org, news = search(db_engine, [{"url": server.url_for(f"/{n}")} for n in overlapping])
        run(db_engine, org, news, client)
    with Session(db_engine) as s:
        urls = list(s.scalars(select(Story.url).where(Story.newsId == news)))
        entries = s.scalar(select(func.count()).select_from(Entry))
    assert len(urls) == len(set(urls)) and entries is not None and entries > len(urls)


def test_every_provider_is_fetched_with_the_query_and_ingested(db_engine, client):
    answers = {
        "/google": (FEEDS / "rssparser-prof18-feed-test-source.xml", "application/rss+xml"),
        "/bing": (FEEDS / "rssparser-prof18-feed-bing-image.xml", "application/rss+xml"),
        "/reddit": (FEEDS / "rssparser-prof18-atom-feed-reddit.xml", "application/atom+xml"),
        "/hn": (PROVIDERS / "hackernews-algolia-search_by_date.json", "application/json"),
        "/gdelt": (PROVIDERS / "gdelt-doc-artlist.json", "application/json"),
    }
    routes = {
        path: Response(body=file.read_bytes(), headers={"Content-Type": kind})
        for path, (file, kind) in answers.items()
    }
    with LocalHTTPServer(routes=routes) as server:
        bases = {
            "google_news": server.url_for("/google"),
            "bing_news": server.url_for("/bing"),
            "reddit": server.url_for("/reddit"),
            "hackernews": server.url_for("/hn"),
            "gdelt": server.url_for("/gdelt"),
        }
        sources = [{"type": kind, "language": "en", "country": "US"} for kind in bases]
        org, news = search(db_engine, sources, query="news", provider_base_urls=bases)
        stats = run(db_engine, org, news, client)
        queries = {r.path: r.query for r in server.requests}
    assert "sourceErrors" not in stats and stats["sources_fetched"] == 5
    assert "q=news" in queries["/google"] and "hl=en-US" in queries["/google"]
    assert "format=rss" in queries["/bing"] and "query=news" in queries["/hn"]
    assert "mode=artlist" in queries["/gdelt"] and "q=news" in queries["/reddit"]
    with Session(db_engine) as s:
        types = dict(s.execute(select(Source.type, Source.status)).all())
        per_type = dict(
            s.execute(
                select(Source.type, func.count(Entry.id))
                .join(Entry, Entry.sourceId == Source.id)
                .group_by(Source.type)
            ).all()
        )
    assert set(types) == set(bases) and set(types.values()) == {"ok"}
    assert per_type == {"google_news": 1, "bing_news": 1, "reddit": 1, "hackernews": 3, "gdelt": 4}


def test_wire_copies_of_one_search_share_a_cluster(db_engine, client):
    body = (PROVIDERS / "gdelt-doc-artlist.json").read_bytes()
    with LocalHTTPServer(routes={"/gdelt": Response(body=body)}) as server:
        org, news = search(
            db_engine,
            [{"type": "gdelt"}],
            query="opec",
            provider_base_urls={"gdelt": server.url_for("/gdelt")},
        )
        run(db_engine, org, news, client)
    with Session(db_engine) as s:
        found = {st.title: st for st in s.scalars(select(Story).where(Story.newsId == news))}
    reuters = found["OPEC + agrees to extend oil output cuts into 2025"]
    usnews = found["OPEC + Agrees to Extend Oil Output Cuts Into 2025"]
    assert reuters.clusterId is not None and usnews.clusterId == reuters.clusterId
    assert reuters.clusterId in {reuters.id, usnews.id}
    others = [st for t, st in found.items() if "output cuts into 2025" not in t.lower()]
    assert others and all(st.clusterId is None for st in others)


def test_redirect_chain_is_followed_and_a_loop_is_a_source_error(db_engine, client):
    feed = (FEEDS / "rsparser-ranchero-manton.rss").read_bytes()
    routes = {
        "/a": redirect("/b", 301),
        "/b": redirect("/c", 302),
        "/c": redirect("/feed", 307),
        "/feed": Response(body=feed),
        "/loop": redirect("/loop"),
    }
    with LocalHTTPServer(routes=routes) as server:
        org, news = search(
            db_engine, [{"url": server.url_for("/a")}, {"url": server.url_for("/loop")}]
        )
        stats = run(db_engine, org, news, client)
    assert stats["sources_fetched"] == 1 and stats["entriesNew"] > 0
    assert "too many redirects" in stats["sourceErrors"][0]["error"]


def _gzip_bomb() -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as zipped:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(64):  # 64 MiB of zeros in ~64 KiB
            zipped.write(chunk)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (trickle(b"<rss>" + b" " * 100, 0.2), "deadline"),
        ("oversized", "too large"),
        ("bomb", "too large"),
        ("endless", "too large"),
    ],
)
def test_hostile_bodies_are_source_errors_and_store_nothing(db_engine, client, handler, error):
    routes: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    if handler == "oversized":
        routes["/feed"] = Response(body=b"<rss>" + b" " * (300 * 1024) + b"</rss>")
    elif handler == "bomb":
        routes["/feed"] = Response(body=_gzip_bomb(), headers={"Content-Encoding": "gzip"})
    elif handler == "endless":  # chunked, no length, never ends
        endless = (b"<item>" * 1000 for _ in range(10_000))
        raw["/feed"] = raw_response(b"HTTP/1.1 200 OK", endless, chunked=True)
    else:
        raw["/feed"] = handler
    with LocalHTTPServer(routes=routes, raw=raw) as server:
        org, news = search(db_engine, [{"url": server.url_for("/feed")}])
        started = time.monotonic()
        stats = run(db_engine, org, news, client)
    assert time.monotonic() - started < POLICY.deadline_s + 2
    assert error in stats["sourceErrors"][0]["error"]
    source = one_source(db_engine)
    assert source.status == "failing" and error in (source.lastError or {})["error"]
    with Session(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(Entry)) == 0


def test_malformed_xml_and_wrong_charset_store_valid_text_with_a_warning(db_engine, client):
    latin1 = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
        "<item><title>Caf\xe9 cr\xe8me &amp; cr\xeape</title><link>http://example.org/1</link>"
        "</item><item><title>Second</title><link>http://example.org/2</link></item>"
        "<item><title>Truncated</title><link>http://example.org/3</link>"
    ).encode("latin-1")
    routes = {"/feed": Response(body=latin1, headers={"Content-Type": "text/xml; charset=utf-8"})}
    with LocalHTTPServer(routes=routes) as server:
        org, news = search(db_engine, [{"url": server.url_for("/feed")}])
        stats = run(db_engine, org, news, client)
    assert "sourceErrors" not in stats and stats["entriesNew"] >= 2
    with Session(db_engine) as s:
        titles = list(s.scalars(select(Entry.title)))
    assert all(t.encode("utf-8").decode("utf-8") == t for t in titles)
    assert any("Caf" in t for t in titles)
    source = one_source(db_engine)
    assert source.status == "ok" and source.lastError and source.lastError["warning"]


def test_twenty_thousand_item_feed_is_bounded(db_engine):
    items = "".join(
        f"<item><title>Item {i}</title><link>http://example.org/{i}</link></item>"
        for i in range(20_000)
    )
    body = f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()
    policy = POLICY.replace(max_body_bytes=10 * 1024 * 1024, deadline_s=10)
    with (
        LocalHTTPServer(routes={"/feed": Response(body=body)}) as server,
        build_client(policy) as big,
    ):
        org, news = search(db_engine, [{"url": server.url_for("/feed")}])
        started = time.monotonic()
        stats = run(db_engine, org, news, big)
        elapsed = time.monotonic() - started
    assert stats["entriesNew"] == MAX_ENTRIES_PER_FEED
    assert elapsed < 20


def test_not_modified_feed_is_not_reparsed_and_stores_nothing(db_engine, client):
    body = (FEEDS / "rsparser-ranchero-manton.rss").read_bytes()
    seen: list[str | None] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers.get("if-modified-since"))
        if request.headers.get("if-modified-since"):
            return Response(status=304, body=b"")
        return Response(body=body, headers={"Last-Modified": "Tue, 24 Nov 2026 08:00:00 GMT"})

    with LocalHTTPServer(routes={"/feed": handler}) as server:
        org, news = search(db_engine, [{"url": server.url_for("/feed")}])
        run(db_engine, org, news, client)
        with Session(db_engine) as s, s.begin():
            s.execute(update(Source).values(nextFetchAt=None))
        with Session(db_engine) as s:
            before = s.scalar(select(func.count()).select_from(Entry))
        stats = run(db_engine, org, news, client)
    assert seen == [None, "Tue, 24 Nov 2026 08:00:00 GMT"]
    assert stats["sources_not_modified"] == 1 and stats["entriesNew"] == stats["storiesNew"] == 0
    with Session(db_engine) as s:
        assert s.scalar(select(func.count()).select_from(Entry)) == before
    assert json.dumps(stats)  # the run's statistics stay JSON
