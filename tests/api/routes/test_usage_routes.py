"""``GET /usage`` and the operator's usage and limits: each organization sees only its own
counters, operators see every organization's; limits set by an operator are enforced with
one named error (403 ``limit_reached``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import News
from core.usage.months import month_of
from tests.api.conftest import FakeClock, Tenant, another_key
from tests.api.routes.test_opml_routes import feed, opml, post_opml, resolver

ZERO = {"fetches": 0, "storiesStored": 0, "deliveriesSent": 0, "apiRequests": 0}


def _op(operator_key: str) -> dict[str, str]:
    return {"x-api-key": operator_key}


def _search(client: TestClient, tenant: Tenant, name: str, urls: list[str]) -> Any:
    body = {"name": name, "searchQuery": {"query": "", "sources": [{"url": u} for u in urls]}}
    return client.post("/news", json=body, headers=tenant.headers)


def _limits(client: TestClient, operator_key: str, tenant: Tenant, **limits: int) -> None:
    response = client.put(
        f"/operator/organizations/{tenant.id}/limits", json=limits, headers=_op(operator_key)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "maxSearches": None,
        "maxSources": None,
        "maxDeliveriesPerDay": None,
        **limits,
    }


def test_usage_counts_each_organizations_own_requests_only(
    client: TestClient, clock: FakeClock, org_a: Tenant, org_b: Tenant
) -> None:
    for _ in range(3):
        assert client.get("/news", headers=org_a.headers).status_code == 200
    client.get("/news", headers={"x-api-key": org_a.key[:-1] + "x"})  # refused: not counted
    response = client.get("/usage", headers=org_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    this_month = month_of(clock())
    assert body["organizationId"] == org_a.id
    assert body["months"] == [{**ZERO, "month": this_month, "apiRequests": 4}]  # this one too
    assert body["limits"] == {"maxSearches": None, "maxSources": None, "maxDeliveriesPerDay": None}
    assert body["current"] == {"searches": 0, "sources": 0, "deliveriesToday": 0}
    [b_month] = client.get("/usage", headers=org_b.headers).json()["months"]
    assert b_month == {**ZERO, "month": this_month, "apiRequests": 1}


def test_usage_of_a_month_and_of_a_range_oldest_first(
    client: TestClient, clock: FakeClock, org_a: Tenant
) -> None:
    clock.now = clock.now.replace(year=2026, month=11, day=15)
    client.get("/news", headers=org_a.headers)
    clock.now = clock.now.replace(month=12)
    november = client.get("/usage?month=2026-11", headers=org_a.headers).json()["months"]
    assert november == [{**ZERO, "month": "2026-11", "apiRequests": 1}]
    months = client.get("/usage?from=2026-10&to=2027-01", headers=org_a.headers).json()["months"]
    assert [(m["month"], m["apiRequests"]) for m in months] == [
        ("2026-10", 0),
        ("2026-11", 1),
        ("2026-12", 2),  # the two /usage requests of December
        ("2027-01", 0),
    ]
    since = client.get("/usage?from=2026-11", headers=org_a.headers).json()["months"]
    assert [m["month"] for m in since] == ["2026-11", "2026-12"]


def test_bad_usage_queries_are_422_naming_the_field(client: TestClient, org_a: Tenant) -> None:
    for query, field in [
        ("month=2026-13", "month"),
        ("month=2026-11&from=2026-10", "month"),
        ("to=2026-11", "from"),
        ("from=2026-12&to=2026-11", "to"),
        ("from=2020-01&to=2026-12", "to"),  # more than 24 months
        ("from=1999-12", "to"),  # through this month: more than 24
    ]:
        response = client.get(f"/usage?{query}", headers=org_a.headers)
        assert response.status_code == 422, query
        assert response.json()["error"]["fields"][0]["field"] == field, query


def test_usage_needs_usage_read(client: TestClient, api_engine: Engine, org_a: Tenant) -> None:
    weak = another_key(api_engine, org_a, permissions={"news": ["read"]})
    response = client.get("/usage", headers=weak.headers)
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "missing permission usage:read"


def test_operator_sees_every_organizations_month_and_tenants_cannot(
    client: TestClient, operator_key: str, org_a: Tenant, org_b: Tenant
) -> None:
    client.get("/news", headers=org_a.headers)
    _limits(client, operator_key, org_b, maxDeliveriesPerDay=5)
    assert client.get("/operator/usage", headers=org_a.headers).status_code == 403
    response = client.get("/operator/usage", headers=_op(operator_key))
    assert response.status_code == 200, response.text
    rows = {row["slug"]: row for row in response.json()["items"]}
    assert rows["org-a"]["usage"]["apiRequests"] == 1
    assert rows["org-b"]["usage"]["apiRequests"] == 0
    assert rows["org-b"]["limits"]["maxDeliveriesPerDay"] == 5
    one = client.get(f"/operator/organizations/{org_a.id}/usage", headers=_op(operator_key))
    assert one.json()["months"][0]["apiRequests"] == 1
    missing = client.get("/operator/organizations/nope/usage", headers=_op(operator_key))
    assert missing.status_code == 404
    page = client.get("/operator/usage?limit=1", headers=_op(operator_key)).json()
    assert len(page["items"]) == 1 and page["nextCursor"] is not None


def test_max_searches_refuses_the_next_search_with_limit_reached(
    client: TestClient, api_engine: Engine, operator_key: str, org_a: Tenant, org_b: Tenant
) -> None:
    client.app.state.fetch_resolver = resolver  # type: ignore[attr-defined]
    _limits(client, operator_key, org_a, maxSearches=1)
    assert _search(client, org_a, "One", ["https://a.example/feed"]).status_code == 201
    refused = _search(client, org_a, "Two", ["https://a.example/feed"])
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {
            "type": "limit_reached",
            "message": "limit maxSearches reached: the organization may have 1 searches and has 1",
            "fields": [
                {
                    "field": "maxSearches",
                    "message": "limit maxSearches reached: the organization may have 1 "
                    "searches and has 1",
                }
            ],
        }
    }
    with api_engine.connect() as conn:
        assert conn.scalars(select(News.name).where(News.organizationId == org_a.id)).all() == [
            "One"
        ]
    # Another organization is not bound by it.
    assert _search(client, org_b, "Two", ["https://a.example/feed"]).status_code == 201


def test_max_sources_counts_distinct_sources_on_create_update_and_opml(
    client: TestClient, operator_key: str, org_a: Tenant
) -> None:
    client.app.state.fetch_resolver = resolver  # type: ignore[attr-defined]
    _limits(client, operator_key, org_a, maxSources=2)
    first = _search(client, org_a, "A", ["https://a.example/1", "https://a.example/2"])
    assert first.status_code == 201
    # A feed another search of the organization follows is no new source.
    shared = _search(client, org_a, "B", ["https://a.example/2"])
    assert shared.status_code == 201
    over = _search(client, org_a, "C", ["https://a.example/3"])
    assert over.status_code == 403
    assert over.json()["error"]["type"] == "limit_reached"
    assert over.json()["error"]["fields"][0]["field"] == "maxSources"
    news_id = shared.json()["id"]
    patch = {"searchQuery": {"query": "", "sources": [{"url": "https://a.example/9"}]}}
    widened = client.patch(f"/news/{news_id}", json=patch, headers=org_a.headers)
    assert widened.status_code == 403 and "maxSources" in widened.json()["error"]["message"]
    report = post_opml(
        client,
        org_a,
        news_id,
        opml(feed("https://a.example/1"), feed("https://n.example/new")),
    ).json()
    assert [f["url"] for f in report["accepted"]] == ["https://a.example/1"]
    assert [(r["url"], r["reason"]) for r in report["refused"]] == [
        ("https://n.example/new", "limit_reached")
    ]
    usage = client.get("/usage", headers=org_a.headers).json()
    assert usage["current"]["sources"] == 2
    assert usage["current"]["searches"] == 2


def test_limits_are_operator_only_validated_and_lifted_by_null(
    client: TestClient, operator_key: str, org_a: Tenant
) -> None:
    url = f"/operator/organizations/{org_a.id}/limits"
    assert client.put(url, json={"maxSearches": 1}, headers=org_a.headers).status_code == 403
    bad = client.put(url, json={"maxSearches": -1}, headers=_op(operator_key))
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "maxSearches"
    unknown = client.put(url, json={"maxStories": 1}, headers=_op(operator_key))
    assert unknown.status_code == 422
    missing = client.put("/operator/organizations/nope/limits", json={}, headers=_op(operator_key))
    assert missing.status_code == 404
    _limits(client, operator_key, org_a, maxSearches=0)
    assert _search(client, org_a, "X", ["https://a.example/1"]).status_code == 403
    _limits(client, operator_key, org_a)  # every limit lifted
    assert _search(client, org_a, "X", ["https://a.example/1"]).status_code == 201


def test_the_operator_page_shows_this_months_usage_and_limits(
    client: TestClient, operator_key: str, org_a: Tenant
) -> None:
    _limits(client, operator_key, org_a, maxSearches=3, maxDeliveriesPerDay=40)
    for _ in range(2):
        client.get("/news", headers=org_a.headers)
    answer = client.post(
        "/ops/login",
        content=f"key={operator_key}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": "http://testserver",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    page = client.get("/ops").text
    section = page[page.index('<section id="usage">') : page.index('<section id="recent-runs">')]
    row = section[section.index("<td>org-a</td>") :].split("</tr>")[0]
    assert re.findall(r"<td>(.*?)</td>", row, re.S) == [
        "org-a",
        "2",
        "0",
        "0",
        "0",
        "maxSearches 3, maxDeliveriesPerDay 40",
    ]
