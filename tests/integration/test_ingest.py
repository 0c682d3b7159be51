"""A run of a search ingests its feeds over real HTTP from a local server, on both DBs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db.models import Entry, Source, Story
from core.fetch import GuardPolicy, build_client
from core.fetch.client import GuardedClient
from core.ingest.stories import FIRST_RUN_ANNOUNCE
from core.news.searches import create_search
from core.tenancy.organizations import create_organization
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.runs import ingest_at

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def client() -> Iterator[GuardedClient]:
    with build_client(GuardPolicy.from_allowlist(["127.0.0.1"])) as guarded:
        yield guarded


def etag_feed(name: str, etag: str = '"v1"'):
    """Serve a fixture feed with an ETag, answering 304 to a matching If-None-Match."""
    body = (FEEDS / name).read_bytes()

    def handler(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body=body, headers={"ETag": etag, "Content-Type": "application/xml"})

    return handler


def run_search(engine: Engine, org_id: str, news_id: str, client: GuardedClient, now=NOW):
    return ingest_at(engine, org_id, news_id, client, now)


def make_search(engine: Engine, slug: str, urls: list[str], query: str = "") -> tuple[str, str]:
    with Session(engine) as s, s.begin():
        org = create_organization(s, name=slug, slug=slug)
        news = create_search(
            s,
            org.id,
            name="s",
            search_query={"query": query, "sources": [{"url": u} for u in urls]},
        )
        return org.id, news.id


def stories(engine: Engine, news_id: str) -> list[Story]:
    with Session(engine) as s:
        return list(s.scalars(select(Story).where(Story.newsId == news_id)))


def test_first_run_records_everything_but_announces_only_the_newest(db_engine, client):
    with LocalHTTPServer(directory=FEEDS) as server:
        org, news = make_search(db_engine, "a", [server.url_for("/miniflux-parser-large_rss.xml")])
        stats = run_search(db_engine, org, news, client)
    found = stories(db_engine, news)
    announced = [s for s in found if not s.isFiltered]
    assert len(announced) == FIRST_RUN_ANNOUNCE
    assert stats["storiesNew"] == len(found) > FIRST_RUN_ANNOUNCE
    assert stats["storiesBacklog"] == len(found) - FIRST_RUN_ANNOUNCE
    newest = sorted(found, key=lambda s: s.publishedAt or NOW, reverse=True)[:FIRST_RUN_ANNOUNCE]
    assert {s.id for s in newest} == {s.id for s in announced}


def test_same_story_in_two_feeds_of_one_search_is_one_story(db_engine, client):
    names = ["rsparser-ranchero-DaringFireball.atom", "rsparser-ranchero-DaringFireball.json"]
    with LocalHTTPServer(directory=FEEDS) as server:
        org, news = make_search(db_engine, "a", [server.url_for(f"/{n}") for n in names])
        run_search(db_engine, org, news, client)
    found = stories(db_engine, news)
    urls = [s.url for s in found]
    assert len(urls) == len(set(urls))
    with Session(db_engine) as s:
        per_source = s.scalar(select(func.count()).select_from(Entry))
    assert per_source is not None and per_source > len(found)  # both feeds stored, overlap merged


def test_not_modified_stores_nothing_new_and_reuses_the_etag(db_engine, client):
    with LocalHTTPServer(routes={"/feed": etag_feed("rsparser-ranchero-manton.rss")}) as server:
        org, news = make_search(db_engine, "a", [server.url_for("/feed")])
        first = run_search(db_engine, org, news, client)
        later = NOW + timedelta(hours=7)  # past any freshness window
        second = run_search(db_engine, org, news, client, now=later)
        assert [r.headers.get("if-none-match") for r in server.requests] == [None, '"v1"']
    assert first["sources_fetched"] == 1 and second["sources_not_modified"] == 1
    assert second["storiesNew"] == 0 and second["entriesNew"] == 0


def test_two_organizations_one_feed_one_fetch_separate_stories(db_engine, client):
    with LocalHTTPServer(directory=FEEDS) as server:
        url = server.url_for("/rsparser-ranchero-manton.rss")
        org_a, news_a = make_search(db_engine, "a", [url])
        org_b, news_b = make_search(db_engine, "b", [url])
        run_search(db_engine, org_a, news_a, client)
        run_search(db_engine, org_b, news_b, client)
        assert server.hits["/rsparser-ranchero-manton.rss"] == 1
    a, b = stories(db_engine, news_a), stories(db_engine, news_b)
    assert a and {s.url for s in a} == {s.url for s in b}
    assert {s.organizationId for s in a} == {org_a} and {s.organizationId for s in b} == {org_b}
    assert not {s.id for s in a} & {s.id for s in b}


def test_query_filters_entries(db_engine, client):
    with LocalHTTPServer(directory=FEEDS) as server:
        url = server.url_for("/rsparser-ranchero-DaringFireball.atom")
        org_all, news_all = make_search(db_engine, "a", [url])
        org_q, news_q = make_search(db_engine, "b", [url], query="apple OR iphone")
        run_search(db_engine, org_all, news_all, client)
        run_search(db_engine, org_q, news_q, client)
    everything, matching = stories(db_engine, news_all), stories(db_engine, news_q)
    assert 0 < len(matching) < len(everything)
    for story in matching:
        assert story.explanation and story.explanation["matched"]
        assert 0 < story.relevanceScore <= 1


def test_html_instead_of_feed_fails_the_source_and_keeps_old_stories(db_engine, client):
    state = {"html": False}
    feed = (FEEDS / "rsparser-ranchero-manton.rss").read_bytes()

    def handler(request: Request) -> Response:
        if state["html"]:
            return Response(
                body=b"<html><body>Maintenance</body></html>", headers={"Content-Type": "text/html"}
            )
        return Response(body=feed)

    with LocalHTTPServer(routes={"/feed": handler}) as server:
        org, news = make_search(db_engine, "a", [server.url_for("/feed")])
        run_search(db_engine, org, news, client)
        before = {s.id for s in stories(db_engine, news)}
        state["html"] = True
        stats = run_search(db_engine, org, news, client, now=NOW + timedelta(hours=7))
    assert "not a feed" in stats["sourceErrors"][0]["error"]
    assert {s.id for s in stories(db_engine, news)} == before
    with Session(db_engine) as s:
        source = s.scalars(select(Source)).one()
        assert source.status == "failing" and source.failureCount == 1
        assert source.lastError and "not a feed" in source.lastError["error"]


def test_retry_after_on_429_postpones_the_source(db_engine, client):
    routes = {"/feed": Response(status=429, headers={"Retry-After": "7200"})}
    with LocalHTTPServer(routes=routes) as server:
        org, news = make_search(db_engine, "a", [server.url_for("/feed")])
        stats = run_search(db_engine, org, news, client)
        assert stats["sourceErrors"][0]["error"] == "HTTP 429"
        run_search(db_engine, org, news, client, now=NOW + timedelta(minutes=30))
        assert server.hits["/feed"] == 1  # still backing off
    with Session(db_engine) as s:
        source = s.scalars(select(Source)).one()
        assert source.nextFetchAt is not None
        assert source.nextFetchAt >= NOW + timedelta(seconds=7200)
        assert source.lastStatusCode == 429


def test_private_destination_is_refused_without_allowlist(db_engine):
    with LocalHTTPServer(directory=FEEDS) as server, build_client(GuardPolicy()) as strict:
        org, news = make_search(db_engine, "a", [server.url_for("/rsparser-ranchero-manton.rss")])
        stats = run_search(db_engine, org, news, strict)
        assert server.total_hits == 0
    assert "destination not allowed" in stats["sourceErrors"][0]["error"]
    assert stories(db_engine, news) == []


def test_feed_server_fixture_serves_corpus_files_and_scripted_routes(feed_server, client):
    feed_server.routes["/gone"] = Response(status=410)
    assert client.fetch(feed_server.url_for("/rsparser-ranchero-manton.rss")).status == 200
    assert client.fetch(feed_server.url_for("/gone")).status == 410
    assert feed_server.hits["/gone"] == 1
