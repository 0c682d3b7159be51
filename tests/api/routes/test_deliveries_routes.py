"""Deliveries through the API: filters, pagination, replay of a failed one (row 51); and
the dry-run preview of a search over delivered entries (it writes nothing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import AuditLog, Delivery, DeliveryAttempt, News, Organization
from core.db.session import unit_of_work
from tests.api.conftest import Tenant, another_key
from tests.support import factories


def seed(engine: Engine, tenant: Tenant) -> tuple[str, dict[str, str]]:
    """A search with two channels: one delivery sent, one failed."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization)
        sent = factories.delivery(
            session, factories.channel(session, organization), search, state="sent", attempts=1
        )
        failed = factories.delivery(
            session,
            factories.channel(session, organization),
            search,
            state="failed",
            attempts=8,
            lastError="HTTP 500",
        )
        return search.id, {"sent": sent.id, "failed": failed.id}


def test_list_filters_and_get(client: TestClient, org_a: Tenant, api_engine: Engine) -> None:
    news_id, ids = seed(api_engine, org_a)
    everything = client.get("/deliveries", headers=org_a.headers).json()["items"]
    assert {d["id"] for d in everything} == set(ids.values())
    assert {d["newsId"] for d in everything} == {news_id}
    failed = client.get("/deliveries?state=failed", headers=org_a.headers).json()["items"]
    assert [d["id"] for d in failed] == [ids["failed"]]
    one = client.get(f"/deliveries/{ids['sent']}", headers=org_a.headers).json()
    by_channel = client.get(
        f"/deliveries?channelId={one['channelId']}", headers=org_a.headers
    ).json()["items"]
    assert [d["id"] for d in by_channel] == [ids["sent"]]
    assert client.get("/deliveries?newsId=other", headers=org_a.headers).json()["items"] == []
    page = client.get("/deliveries?limit=1", headers=org_a.headers).json()
    rest = client.get(
        f"/deliveries?limit=1&cursor={page['nextCursor']}", headers=org_a.headers
    ).json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == set(ids.values())
    bad = client.get("/deliveries?state=lost", headers=org_a.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "state"


def test_replay_of_a_failed_delivery_keeps_its_id_and_is_audited(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    _, ids = seed(api_engine, org_a)
    response = client.post(f"/deliveries/{ids['failed']}/replay", headers=org_a.headers)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == ids["failed"]  # the webhook-id a receiver sees again
    # only failed or unknown deliveries can be replayed: a delivered one is a conflict
    # that says so, as is one already under way again
    again = client.post(f"/deliveries/{ids['sent']}/replay", headers=org_a.headers)
    assert again.status_code == 409
    assert "was delivered; there is nothing to replay" in again.json()["error"]["message"]
    twice = client.post(f"/deliveries/{ids['failed']}/replay", headers=org_a.headers)
    assert twice.status_code == 409 and "is pending" in twice.json()["error"]["message"]
    assert client.post("/deliveries/nope/replay", headers=org_a.headers).status_code == 404
    with api_engine.connect() as conn:
        row = conn.execute(select(Delivery).where(Delivery.id == ids["failed"])).one()
        audit = conn.execute(select(AuditLog.action, AuditLog.targetId)).all()
    assert (row.state, row.attempts) == ("pending", 0)
    assert [tuple(a) for a in audit] == [("delivery.replay", ids["failed"])]


def test_preview_writes_nothing_and_names_a_bad_query(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    from core.db.models import Entry, NewsSource  # noqa: PLC0415
    from core.news.searches import source_for_url  # noqa: PLC0415

    news_id, _ = seed(api_engine, org_a)
    with unit_of_work(api_engine) as session:
        search = session.get(News, news_id)
        assert search is not None
        source = source_for_url(session, "https://example.com/feed.xml")
        session.add(NewsSource(organizationId=org_a.id, newsId=news_id, sourceId=source.id))
        for i, title in enumerate(["AI beats chess champion", "Cooking pasta at home"]):
            session.add(
                Entry(
                    sourceId=source.id,
                    canonicalUrl=f"https://example.com/{i}",
                    url=f"https://example.com/{i}",
                    title=title,
                    contentHash=str(i),
                )
            )
    before = _rows(api_engine)
    response = client.post(
        f"/news/{news_id}/preview", json={"query": "ai OR chess"}, headers=org_a.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["notMatching"] == 1
    shown = body["wouldDeliver"] + body["filtered"]
    assert [i["title"] for i in shown] == ["AI beats chess champion"]
    assert shown[0]["explanation"]["matched"]
    bad = client.post(f"/news/{news_id}/preview", json={"query": "(ai"}, headers=org_a.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "query"
    settings = client.post(
        f"/news/{news_id}/preview",
        json={"relevanceSettings": {"threshold": 7}},
        headers=org_a.headers,
    )
    assert settings.status_code == 422
    assert settings.json()["error"]["fields"][0]["field"].startswith("relevanceSettings")
    assert _rows(api_engine) == before


def _rows(engine: Engine) -> list[object]:
    """Every row of every table but ``apikeys`` (whose request counters a call moves)."""
    from core.db.base import Base  # noqa: PLC0415

    rows: list[object] = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name != "apikeys":
                rows.extend(tuple(r) for r in conn.execute(select(table)))
    return sorted(rows, key=repr)


def test_attempts_of_a_delivery_oldest_first_and_only_the_organizations(
    client: TestClient, org_a: Tenant, org_b: Tenant, api_engine: Engine
) -> None:
    _, ids = seed(api_engine, org_a)
    started = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with unit_of_work(api_engine) as session:
        for number, outcome, status in ((1, "failed", 500), (2, "sent", 200)):
            session.add(
                DeliveryAttempt(
                    organizationId=org_a.id,
                    deliveryId=ids["failed"],
                    attempt=number,
                    outcome=outcome,
                    statusCode=status,
                    durationMs=40 * number,
                    response="ok" if status == 200 else "boom",
                    startedAt=started + timedelta(minutes=number),
                )
            )
            session.flush()
    response = client.get(f"/deliveries/{ids['failed']}/attempts", headers=org_a.headers)
    assert response.status_code == 200, response.text
    shown = [
        (a["attempt"], a["outcome"], a["statusCode"], a["durationMs"], a["response"])
        for a in response.json()
    ]
    assert shown == [(1, "failed", 500, 40, "boom"), (2, "sent", 200, 80, "ok")]
    assert response.json()[0]["startedAt"] == "2026-11-30T08:01:00Z"
    assert client.get(f"/deliveries/{ids['sent']}/attempts", headers=org_a.headers).json() == []
    other = client.get(f"/deliveries/{ids['failed']}/attempts", headers=org_b.headers)
    assert other.status_code == 404 and "boom" not in other.text
    reader = another_key(api_engine, org_a, permissions={"news": ["read"]})
    refused = client.get(f"/deliveries/{ids['failed']}/attempts", headers=reader.headers)
    assert refused.status_code == 403
