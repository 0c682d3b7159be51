"""GET /stories?q= (ranked full-text search with highlights) and GET /stories/export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, update

from core.db.models import News, Organization, Story
from core.db.session import unit_of_work
from tests.api.conftest import Tenant
from tests.support import factories


def seed(engine: Engine, tenant: Tenant, stories: list[dict[str, object]], name: str = "S") -> str:
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization, name=name)
        for i, fields in enumerate(stories):
            fields.setdefault("foundAt", datetime(2026, 5, 1 + i, tzinfo=UTC))
            url = str(fields.pop("url", f"https://news.example/{name}/{i}"))
            factories.story(session, search, url, **fields)
        return search.id


NEWS: list[dict[str, object]] = [
    {
        "title": "Election results announced",
        "snippet": "The national elections ended late; the election board counted every vote.",
    },
    {"title": "Weather report", "snippet": "Rain all week."},
    {"title": "Local election <script>alert(1)</script>", "snippet": None},
    {"title": "Markets", "snippet": "Stocks rose after the results were announced."},
]


def search(client: TestClient, tenant: Tenant, q: str, **params: object) -> list[dict[str, Any]]:
    response = client.get("/stories", params={"q": q, **params}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_search_ranks_stems_and_highlights_only_the_callers_stories(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    seed(api_engine, org_a, [dict(s) for s in NEWS])
    seed(api_engine, org_b, [{"title": "Election secrets of B", "snippet": "elections"}])
    items = search(client, org_a, "elections")
    assert [i["title"] for i in items] == [
        "Election results announced",  # three matches: ranked first
        "Local election <script>alert(1)</script>",
    ]
    best = items[0]["match"]
    assert best["rank"] > items[1]["match"]["rank"] > 0
    assert best["title"] == "<mark>Election</mark> results announced"
    assert "<mark>elections</mark>" in best["snippet"]
    # the story's text is escaped: only the marks are markup
    assert items[1]["match"]["title"] == (
        "Local <mark>election</mark> &lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert items[1]["match"]["snippet"] is None
    # without q there is no match block, and the list is unchanged
    plain = client.get("/stories", headers=org_a.headers).json()["items"]
    assert len(plain) == 4 and all(i["match"] is None for i in plain)


def test_phrases_or_and_exclusions(client: TestClient, api_engine: Engine, org_a: Tenant) -> None:
    seed(api_engine, org_a, [dict(s) for s in NEWS])

    def titles(q: str) -> list[str]:
        return sorted(i["title"] for i in search(client, org_a, q))

    assert titles('"results announced"') == ["Election results announced"]
    assert titles("results announced") == ["Election results announced", "Markets"]
    assert titles("weather OR stocks") == ["Markets", "Weather report"]
    assert titles("election -local") == ["Election results announced"]
    assert titles('election -"results announced"') == ["Local election <script>alert(1)</script>"]
    # query syntax of the databases is only ever text here: no error, no injection
    for odd in ('"unbalanced', "NEAR(a b)", "*", "AND", "-", "a:b", "'; DROP TABLE stories; --"):
        client.get("/stories", params={"q": odd}, headers=org_a.headers).raise_for_status()


def test_search_takes_the_list_filters_and_pages_by_rank(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    first = seed(
        api_engine,
        org_a,
        [{"title": f"Solar {i}", "snippet": "solar " * i} for i in range(1, 4)],
        "one",
    )
    seed(api_engine, org_a, [{"title": "Solar elsewhere"}], "two")
    assert len(search(client, org_a, "solar")) == 4
    assert len(search(client, org_a, "solar", newsId=first)) == 3
    in_may_2 = search(
        client, org_a, "solar", since="2026-05-02T00:00:00Z", until="2026-05-03T00:00:00Z"
    )
    assert [i["title"] for i in in_may_2] == ["Solar 2"]

    page = client.get(
        "/stories", params={"q": "solar", "newsId": first, "limit": 2}, headers=org_a.headers
    ).json()
    assert [i["title"] for i in page["items"]] == ["Solar 3", "Solar 2"]
    rest = client.get(
        "/stories",
        params={"q": "solar", "newsId": first, "limit": 2, "cursor": page["nextCursor"]},
        headers=org_a.headers,
    ).json()
    assert [i["title"] for i in rest["items"]] == ["Solar 1"] and rest["nextCursor"] is None
    past = client.get("/stories", params={"q": "solar", "cursor": "1001"}, headers=org_a.headers)
    assert past.json() == {"items": [], "nextCursor": None}  # deeper than a search pages
    bad = client.get("/stories", params={"q": "solar", "cursor": "01ABC"}, headers=org_a.headers)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "cursor"
    blank = client.get("/stories", params={"q": "   "}, headers=org_a.headers)
    assert blank.status_code == 422 and blank.json()["error"]["fields"][0]["field"] == "q"


def test_the_index_follows_changed_and_deleted_stories(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    news_id = seed(api_engine, org_a, [{"title": "Old headline", "snippet": "nothing"}])
    with unit_of_work(api_engine) as session:
        session.execute(update(Story).values(title="Fresh headline", snippet="geothermal"))
    assert search(client, org_a, "old") == []
    assert [i["title"] for i in search(client, org_a, "geothermal fresh")] == ["Fresh headline"]
    with unit_of_work(api_engine) as session:
        session.execute(delete(News).where(News.id == news_id))  # cascades to its stories
    assert search(client, org_a, "fresh") == []


def test_export_streams_csv_and_ndjson_of_a_date_range(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    stories: list[dict[str, object]] = [
        {"title": "First, with a comma", "snippet": 'quotes " and\nnewline'},
        {"title": '=HYPERLINK("http://evil.example")', "snippet": "+1", "sourceName": "@x"},
        {"title": "Third", "wasDelivered": True, "relevanceScore": 0.75},
        {"title": "Fourth"},
    ]
    news_id = seed(api_engine, org_a, stories)
    seed(api_engine, org_b, [{"title": "B only"}])
    params = {"since": "2026-05-01T00:00:00Z", "until": "2026-05-04T00:00:00Z"}

    response = client.get("/stories/export", params=params, headers=org_a.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="stories.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["title"] for r in rows] == [
        "First, with a comma",
        '\'=HYPERLINK("http://evil.example")',  # never evaluated by a spreadsheet
        "Third",
    ]
    assert rows[0]["snippet"] == 'quotes " and\nnewline'
    assert rows[1]["snippet"] == "'+1" and rows[1]["sourceName"] == "'@x"
    assert rows[2]["newsId"] == news_id and rows[2]["relevanceScore"] == "0.75"
    assert rows[0]["foundAt"].startswith("2026-05-01T00:00:00")

    ndjson = client.get(
        "/stories/export",
        params={**params, "format": "ndjson", "delivered": True},
        headers=org_a.headers,
    )
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert [(x["title"], x["wasDelivered"], x["relevanceScore"]) for x in lines] == [
        ("Third", True, 0.75)
    ]
    assert "B only" not in client.get("/stories/export", headers=org_a.headers).text
