"""Text and dates that read right, through the real run step over HTTP on 127.0.0.1:
mojibake repaired and reported on the source (RELIABILITY row 25), misread and future
dates replaced by the fetch time and flagged on the story."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db.models import Entry, Source, Story
from core.feeds.model import MOJIBAKE_NOTE
from core.fetch import GuardPolicy, build_client
from core.fetch.client import GuardedClient
from core.news.searches import create_search
from core.tenancy.organizations import create_organization
from tests.support import LocalHTTPServer, Response
from tests.support.runs import ingest_at

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: The dash, euro sign and "à" are what windows-1252 mojibake mangles worst.
TEXT = "Café € — naïve à la carte"
FUTURE = (NOW + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
ITEMS = [
    ("misread", "2020/1/10 14:33:00"),
    ("future", FUTURE),
    ("fine", "Mon, 23 Nov 2026 08:00:00 GMT"),
]


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


@pytest.fixture
def client() -> Iterator[GuardedClient]:
    with build_client(GuardPolicy.from_allowlist(["127.0.0.1"])) as guarded:
        yield guarded


def feed(content_type: str) -> Response:
    """UTF-8 bytes under a windows-1252 declaration, as some publishers serve them."""
    items = "".join(
        f"<item><title>{name}: {TEXT}</title><link>http://news.example/{name}</link>"
        f"<description>{TEXT}</description><pubDate>{date}</pubDate></item>"
        for name, date in ITEMS
    )
    body = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel>'
        f"<title>{TEXT}</title><link>http://news.example/</link>{items}</channel></rss>"
    ).encode()
    return Response(body=body, headers={"Content-Type": content_type})


def search(engine: Engine, url: str) -> tuple[str, str]:
    with Session(engine) as s, s.begin():
        org = create_organization(s, name="o", slug="o")
        news = create_search(
            s, org.id, name="s", search_query={"query": "", "sources": [{"url": url}]}
        )
        return org.id, news.id


@pytest.mark.parametrize(
    "content_type",
    ["application/rss+xml", "text/xml; charset=windows-1252"],
    ids=["fast-path", "feedparser"],
)
def test_mojibake_is_repaired_and_reported_on_the_source(
    db_engine: Engine, client: GuardedClient, content_type: str
) -> None:
    with LocalHTTPServer(routes={"/feed": feed(content_type)}) as server:
        org_id, news_id = search(db_engine, server.url_for("/feed"))
        stats = ingest_at(db_engine, org_id, news_id, client, NOW)
    assert stats["entriesNew"] == len(ITEMS) and "sourceErrors" not in stats
    with Session(db_engine) as session:
        entries = list(session.scalars(select(Entry)))
        source = session.scalars(select(Source)).one()
    assert {e.title for e in entries} == {f"{name}: {TEXT}" for name, _ in ITEMS}
    assert {e.summary for e in entries} == {TEXT}
    assert source.title == TEXT and source.status == "ok"
    assert source.lastError is not None and MOJIBAKE_NOTE in source.lastError["warning"]


def test_misread_and_future_dates_become_the_fetch_time_and_the_story_says_why(
    db_engine: Engine, client: GuardedClient
) -> None:
    with LocalHTTPServer(routes={"/feed": feed("application/rss+xml")}) as server:
        org_id, news_id = search(db_engine, server.url_for("/feed"))
        ingest_at(db_engine, org_id, news_id, client, NOW)
    with Session(db_engine) as session:
        stories = {s.url.rsplit("/", 1)[1]: s for s in session.scalars(select(Story))}
        issues = {e.url.rsplit("/", 1)[1]: e.dateIssue for e in session.scalars(select(Entry))}
    misread, future, fine = stories["misread"], stories["future"], stories["fine"]
    assert misread.publishedAt == future.publishedAt == NOW
    assert fine.publishedAt == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert misread.explanation is not None and future.explanation is not None
    assert misread.explanation["publishedAt"].startswith(
        "fetch time (feed date '2020/1/10 14:33:00' read as "
    )
    assert misread.explanation["publishedAt"].endswith("obviously 2020-01-10)")
    assert future.explanation["publishedAt"].endswith("lies 30 day(s) in the future)")
    assert fine.explanation is not None and "publishedAt" not in fine.explanation
    assert issues["fine"] is None and issues["misread"] and issues["future"]


def crafted(declared: str, title: bytes) -> bytes:
    return (
        (
            f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel><title>x'
            "</title><item><link>http://news.example/1</link><title>"
        ).encode()
        + title
        + b"</title></item></channel></rss>"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "title", "warning"),
    [
        (crafted("x-no-such-charset", TEXT.encode()), "application/xml", TEXT, "x-no-such"),
        (crafted("utf-8", TEXT.encode()), "text/xml; charset=bogus-9", TEXT, "bogus-9"),
        # Two bytes that are no UTF-8: the document is read as windows-1252, the rest of
        # its UTF-8 text repaired.
        (
            crafted("utf-8", b"\xff\xfe " + TEXT.encode()),
            "application/rss+xml",
            "ÿþ " + TEXT,
            MOJIBAKE_NOTE,
        ),
    ],
    ids=["unknown-declared", "unknown-header", "invalid-utf8"],
)
def test_wrong_or_unknown_charsets_store_valid_text_with_a_warning(
    db_engine: Engine,
    client: GuardedClient,
    body: bytes,
    content_type: str,
    title: str,
    warning: str,
) -> None:
    routes = {"/feed": Response(body=body, headers={"Content-Type": content_type})}
    with LocalHTTPServer(routes=routes) as server:
        org_id, news_id = search(db_engine, server.url_for("/feed"))
        ingest_at(db_engine, org_id, news_id, client, NOW)
    with Session(db_engine) as session:
        (entry,) = session.scalars(select(Entry))
        source = session.scalars(select(Source)).one()
    assert entry.title == title
    assert source.lastError is not None and warning in source.lastError["warning"]
