"""Story filters and feedback; operator routes (tenants, their keys, runs, failing sources)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from core.db.models import AuditLog, News, Organization, Source, StoryFeedback
from core.db.session import unit_of_work
from tests.api.conftest import Tenant
from tests.support import factories


def seed_stories(engine: Engine, tenant: Tenant) -> dict[str, str]:
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization)
        old = factories.story(
            session,
            search,
            "https://e.com/old",
            relevanceScore=0.2,
            isFiltered=True,
            foundAt=datetime(2026, 1, 1, tzinfo=UTC),
        )
        new = factories.story(
            session,
            search,
            "https://e.com/new",
            relevanceScore=0.9,
            wasDelivered=True,
            foundAt=datetime(2026, 2, 1, tzinfo=UTC),
            explanation={"terms": ["ai"]},
            clusterId=old.id,
        )
        return {"newsId": search.id, "old": old.id, "new": new.id}


def test_story_filters(client: TestClient, api_engine: Engine, org_a: Tenant) -> None:
    ids = seed_stories(api_engine, org_a)

    def listed(**params: object) -> list[str]:
        response = client.get("/stories", params=params, headers=org_a.headers)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    assert set(listed()) == {ids["new"], ids["old"]}  # same millisecond: id order is random
    assert listed(newsId=ids["newsId"], minScore=0.5) == [ids["new"]]
    assert listed(since="2026-01-15T00:00:00Z") == [ids["new"]]
    assert listed(delivered=False) == [ids["old"]]
    assert listed(filtered=True) == [ids["old"]]
    assert listed(clusterId=ids["old"]) == [ids["new"]]
    story = client.get(f"/stories/{ids['new']}", headers=org_a.headers).json()
    assert story["explanation"] == {"terms": ["ai"]}


def test_stories_come_newest_first_in_a_stable_order_across_pages(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    # Created in an order that is neither the list order nor its reverse, so that id
    # order (creation time) cannot pass for it.
    run_1, run_2 = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    rows = [  # (name, foundAt, publishedAt)
        ("r2-undated", run_2, None),
        ("r1-late", run_1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        ("r2-early", run_2, datetime(2026, 3, 1, 8, tzinfo=UTC)),
        ("r1-early", run_1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
        ("r2-late", run_2, datetime(2026, 3, 1, 20, tzinfo=UTC)),
        ("r1-twin-a", run_1, datetime(2026, 2, 28, 9, tzinfo=UTC)),
    ]
    with unit_of_work(api_engine) as session:
        organization = session.get(Organization, org_a.id)
        assert organization is not None
        search = factories.news(session, organization)
        ids = {
            name: factories.story(
                session, search, f"https://e.com/{name}", foundAt=found, publishedAt=published
            ).id
            for name, found, published in rows
        }
    twins = sorted((ids["r1-early"], ids["r1-twin-a"]), reverse=True)
    expected = [ids["r2-undated"], ids["r2-late"], ids["r2-early"], ids["r1-late"], *twins]

    listed: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/stories", params=params, headers=org_a.headers).json()
        listed += [s["id"] for s in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert listed == expected
    description = client.get("/openapi.json").json()["paths"]["/stories"]["get"]["description"]
    assert "newest first" in description and "by id" in description


def test_feedback_upserts_one_label(client: TestClient, api_engine: Engine, org_a: Tenant) -> None:
    ids = seed_stories(api_engine, org_a)
    url = f"/stories/{ids['new']}/feedback"
    assert client.put(url, json={"label": "relevant"}, headers=org_a.headers).status_code == 200
    second = client.put(url, json={"label": "not_relevant"}, headers=org_a.headers)
    assert second.json()["label"] == "not_relevant"
    assert client.put(url, json={"label": "meh"}, headers=org_a.headers).status_code == 422
    with api_engine.connect() as conn:
        labels = list(conn.scalars(select(StoryFeedback.label)))
    assert labels == ["not_relevant"]


def test_operator_manages_tenants_and_keys(
    client: TestClient, api_engine: Engine, operator_key: str
) -> None:
    op = {"x-api-key": operator_key}
    org = client.post("/operator/organizations", json={"name": "Beta Inc"}, headers=op).json()
    assert org["slug"] == "beta-inc"
    created = client.post(
        f"/operator/organizations/{org['id']}/keys",
        json={"name": "first", "permissions": {"news": ["read", "write"]}},
        headers=op,
    ).json()
    tenant = {"x-api-key": created["key"]}
    assert client.get("/news", headers=tenant).status_code == 200
    keys = client.get(f"/operator/organizations/{org['id']}/keys", headers=op).json()["items"]
    assert [k["id"] for k in keys] == [created["id"]] and "key" not in keys[0]
    disabled = client.patch(
        f"/operator/organizations/{org['id']}", json={"isActive": False}, headers=op
    )
    assert disabled.json()["isActive"] is False
    assert client.get("/news", headers=tenant).status_code == 401
    client.patch(f"/operator/organizations/{org['id']}", json={"isActive": True}, headers=op)
    body = {"name": "AI", "searchQuery": {"query": "ai", "sources": []}}
    assert client.post("/news", json=body, headers=tenant).status_code == 201
    assert client.delete(f"/operator/organizations/{org['id']}", headers=op).status_code == 204
    assert client.get(f"/operator/organizations/{org['id']}", headers=op).status_code == 404
    with api_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(News)) == 0
        actions = list(conn.scalars(select(AuditLog.action).order_by(AuditLog.createdAt)))
    assert actions == ["organization.delete"]  # the tenant's own rows went with it


def test_operator_sees_runs_and_failing_sources(
    client: TestClient, api_engine: Engine, operator_key: str, org_a: Tenant
) -> None:
    with unit_of_work(api_engine) as session:
        session.add(Source(url="https://down.example/feed", status="failing", failureCount=4))
        session.add(Source(url="https://up.example/feed", status="ok"))
    op = {"x-api-key": operator_key}
    failing = client.get("/operator/sources/failing", headers=op).json()["items"]
    assert [s["url"] for s in failing] == ["https://down.example/feed"]
    assert client.get("/operator/runs", params={"state": "failed"}, headers=op).json() == {
        "items": [],
        "nextCursor": None,
    }
    assert client.get("/operator/runs", params={"state": "bogus"}, headers=op).status_code == 422
