"""A search as a feed: feed tokens, Atom / RSS / JSON Feed output, caching, isolation."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import feedparser
from dateutil.parser import isoparse
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import FeedToken, News, Organization
from core.db.session import unit_of_work
from core.logs import FEED_TOKEN_MASK
from tests.api.conftest import Tenant
from tests.support import factories

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def seed_search(engine: Engine, tenant: Tenant, name: str = "Climate") -> str:
    """A search with a delivered story, one that would be, a filtered one and a hidden
    near-duplicate; returns the search id."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization, name=name)
        first = factories.story(
            session,
            search,
            "https://news.example/a",
            title="Sea levels & <rising>",
            snippet="Coasts brace",
            sourceName="Example News",
            wasDelivered=True,
            foundAt=datetime(2026, 3, 1, 9, tzinfo=UTC),
            publishedAt=datetime(2026, 3, 1, 8, tzinfo=UTC),
        )
        factories.story(
            session,
            search,
            "https://news.example/b",
            title="Heat record",
            foundAt=datetime(2026, 3, 2, 9, tzinfo=UTC),
        )
        factories.story(
            session,
            search,
            "https://news.example/filtered",
            title="Filtered away",
            isFiltered=True,
            foundAt=datetime(2026, 3, 3, 9, tzinfo=UTC),
        )
        factories.story(
            session,
            search,
            "https://other.example/a-copy",
            title="Sea levels rising (copy)",
            duplicateOfId=first.id,
            clusterId=first.id,
            foundAt=datetime(2026, 3, 4, 9, tzinfo=UTC),
        )
        return search.id


def issue(client: TestClient, tenant: Tenant, news_id: str) -> dict[str, str]:
    response = client.post(f"/news/{news_id}/feed-token", headers=tenant.headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def feed_path(url: str) -> str:
    return url.removeprefix("http://testserver")


def assert_json_feed_11(document: dict[str, object]) -> None:
    """The JSON Feed 1.1 rules: required top-level and item fields, and the types of the
    optional ones this feed writes."""
    assert document["version"] == JSON_FEED_VERSION
    assert isinstance(document["title"], str) and document["title"]
    for key in ("home_page_url", "feed_url", "description"):
        assert isinstance(document.get(key, ""), str)
    items = document["items"]
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item.get("content_html"), str) or isinstance(item["content_text"], str)
        for key in ("date_published", "date_modified"):
            if key in item:
                assert isoparse(item[key]).tzinfo is not None
        for author in item.get("authors", []):
            assert isinstance(author["name"], str)


def test_atom_rss_and_json_feeds_list_what_the_search_delivers_or_would(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed_search(api_engine, org_a)
    issued = issue(client, org_a, news_id)
    assert issued["token"].startswith("nmf_")

    atom = client.get(feed_path(issued["atomUrl"]))  # no API key: the token opens it
    assert atom.status_code == 200, atom.text
    assert atom.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Climate"
    assert [e.title for e in parsed.entries] == ["Heat record", "Sea levels & <rising>"]
    assert [e.link for e in parsed.entries] == ["https://news.example/b", "https://news.example/a"]
    assert parsed.entries[1].author == "Example News"

    rss = client.get(feed_path(issued["rssUrl"]))
    parsed_rss = feedparser.parse(rss.content)
    assert rss.headers["content-type"].startswith("application/rss+xml")
    assert not parsed_rss.bozo, parsed_rss.get("bozo_exception")
    assert parsed_rss.version == "rss20"
    assert [e.title for e in parsed_rss.entries] == ["Heat record", "Sea levels & <rising>"]

    json_feed = client.get(feed_path(issued["jsonUrl"]))
    assert json_feed.headers["content-type"].startswith("application/feed+json")
    document = json_feed.json()
    assert_json_feed_11(document)
    assert [i["url"] for i in document["items"]] == [
        "https://news.example/b",
        "https://news.example/a",
    ]
    assert document["feed_url"] == issued["jsonUrl"]
    # item ids are the same in every format, so a reader switching formats sees no new items
    assert [e.id for e in parsed.entries] == [i["id"] for i in document["items"]]


def test_an_empty_search_is_a_valid_feed_with_a_stable_etag(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    with unit_of_work(api_engine) as session:
        organization = session.get(Organization, org_a.id)
        assert organization is not None
        news_id = factories.news(session, organization, name="Quiet").id
    issued = issue(client, org_a, news_id)
    first = client.get(feed_path(issued["atomUrl"]))
    parsed = feedparser.parse(first.content)
    assert not parsed.bozo and parsed.entries == []
    second = client.get(feed_path(issued["atomUrl"]))
    assert second.headers["etag"] == first.headers["etag"]
    assert second.content == first.content
    assert_json_feed_11(client.get(feed_path(issued["jsonUrl"])).json())


def test_a_feed_is_cacheable_with_etag_and_304_until_it_changes(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed_search(api_engine, org_a)
    url = feed_path(issue(client, org_a, news_id)["atomUrl"])
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=300"

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304

    with unit_of_work(api_engine) as session:
        search = session.get(News, news_id)
        assert search is not None
        factories.story(session, search, "https://news.example/new", title="New one")
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert "New one" in changed.text


def test_a_rotated_or_revoked_token_gets_404(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed_search(api_engine, org_a)
    old = issue(client, org_a, news_id)
    new = issue(client, org_a, news_id)  # rotation
    assert client.get(feed_path(old["atomUrl"])).status_code == 404
    assert client.get(feed_path(old["jsonUrl"])).status_code == 404
    assert client.get(feed_path(new["atomUrl"])).status_code == 200
    status = client.get(f"/news/{news_id}/feed-token", headers=org_a.headers).json()
    assert status["active"] is True and status["start"] == new["start"]

    assert client.delete(f"/news/{news_id}/feed-token", headers=org_a.headers).status_code == 204
    assert client.get(feed_path(new["atomUrl"])).status_code == 404
    assert client.get(feed_path(new["jsonUrl"])).status_code == 404
    status = client.get(f"/news/{news_id}/feed-token", headers=org_a.headers).json()
    assert status == {"active": False, "start": None, "issuedAt": None}
    assert client.delete(f"/news/{news_id}/feed-token", headers=org_a.headers).status_code == 404


def test_a_token_opens_only_its_own_search(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    a_search = seed_search(api_engine, org_a, "A one")
    a_other = seed_search(api_engine, org_a, "A two")
    b_search = seed_search(api_engine, org_b, "B secret")
    a_token = issue(client, org_a, a_search)["token"]
    issue(client, org_b, b_search)
    for target in (b_search, a_other):
        for path in (f"/news/{target}/feed.xml", f"/news/{target}/feed.json"):
            response = client.get(path, params={"token": a_token})
            assert response.status_code == 404, path
            assert "secret" not in response.text and target not in response.text
    # and org A's key cannot issue or revoke B's token
    assert client.post(f"/news/{b_search}/feed-token", headers=org_a.headers).status_code == 404
    assert client.delete(f"/news/{b_search}/feed-token", headers=org_a.headers).status_code == 404


def test_bad_tokens_are_refused_alike(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed_search(api_engine, org_a)
    token = issue(client, org_a, news_id)["token"]
    assert client.get(f"/news/{news_id}/feed.xml").status_code == 422  # no token at all
    for wrong in (
        "x",
        token[:-1] + ("a" if token[-1] != "a" else "b"),
        org_a.key,
        "nmf_" + "!" * 64,
    ):
        response = client.get(f"/news/{news_id}/feed.xml", params={"token": wrong})
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "no such feed"


def test_only_the_tokens_hash_is_stored(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed_search(api_engine, org_a)
    token = issue(client, org_a, news_id)["token"]
    with unit_of_work(api_engine) as session:
        row = session.scalars(select(FeedToken)).one()
        assert token not in (row.tokenHash, row.start, row.id)
        assert token.startswith(row.start)
    assert token not in client.get(f"/news/{news_id}/feed-token", headers=org_a.headers).text


def test_access_log_lines_never_show_a_feed_token() -> None:
    token = "nmf_" + "Ab9" * 21 + "x"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/news/N/feed.xml?token={token}&format=rss", "1.1", 200),
        None,
    )
    FEED_TOKEN_MASK.filter(record)
    line = record.getMessage()
    assert token not in line
    assert "token=nmf_***&format=rss" in line
