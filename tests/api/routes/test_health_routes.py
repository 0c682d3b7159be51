"""``GET /health`` and ``PUT /health/alert-channels``: an organization sees the state of
its own searches, followed sources and channels, never another's; alert channels must be
its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from core.db.models import AuditLog, Channel, Delivery, NewsSource, Organization, Run, Source
from core.db.session import unit_of_work
from core.health.detect import HealthPolicy, check_health
from tests.api.conftest import Tenant
from tests.support import factories

NEXT_FETCH = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
LAST_OK = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def seed(engine: Engine, tenant: Tenant) -> dict[str, str]:
    """A search following a failing source and an ok one, with three failed runs; a
    broken channel with a pending retry and a working one with a sent delivery."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization, name="Rail", nextRun=NEXT_FETCH)
        dead = Source(
            url=f"https://feeds.example/{tenant.id}/dead.xml",
            status="failing",
            failureCount=7,
            lastError={"error": "HTTP 503", "status": 503},
            lastSuccessAt=LAST_OK,
            nextFetchAt=NEXT_FETCH,
        )
        fine = Source(url=f"https://feeds.example/{tenant.id}/fine.xml", status="ok")
        session.add_all([dead, fine])
        session.flush()
        for source in (dead, fine):
            session.add(NewsSource(organizationId=tenant.id, newsId=search.id, sourceId=source.id))
        for minutes in (30, 20, 10):
            at = NEXT_FETCH - timedelta(minutes=minutes)
            session.add(
                Run(
                    organizationId=tenant.id,
                    newsId=search.id,
                    scheduledFor=at,
                    state="failed",
                    finishedAt=at,
                    error={"error": "boom"},
                )
            )
        broken = factories.channel(session, organization)
        broken.status, broken.lastError = "broken", "HTTP 410: endpoint gone"
        working = factories.channel(session, organization)
        factories.delivery(session, working, search, state="sent", sentAt=LAST_OK)
        retry = factories.delivery(session, broken, search, state="pending")
        retry.nextAttemptAt = NEXT_FETCH
        session.flush()
        return {
            "news": search.id,
            "dead": dead.id,
            "fine": fine.id,
            "broken": broken.id,
            "working": working.id,
        }


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_health_shows_every_search_source_and_channel_with_its_state(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    ids = seed(api_engine, org_a)
    with unit_of_work(api_engine) as session:
        check_health(session, HealthPolicy(), now=NEXT_FETCH)

    response = client.get("/health", headers=org_a.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    [search] = body["searches"]
    assert search["id"] == ids["news"]
    assert search["state"] == "failing"
    assert search["failedRuns"] == 3
    assert search["nextAttempt"].startswith("2026-06-01T12:30")
    sources = by_id(body["sources"])
    assert set(sources) == {ids["dead"], ids["fine"]}
    dead = sources[ids["dead"]]
    assert (dead["state"], dead["failureCount"], dead["lastError"]) == ("failing", 7, "HTTP 503")
    assert dead["lastSuccess"].startswith("2026-06-01T09:00")
    assert dead["nextAttempt"].startswith("2026-06-01T12:30")
    assert dead["newsIds"] == [ids["news"]]
    assert body["sources"][0]["id"] == ids["dead"]  # the troubled first
    channels = by_id(body["channels"])
    assert channels[ids["broken"]]["state"] == "broken"
    assert channels[ids["broken"]]["lastError"] == "HTTP 410: endpoint gone"
    assert channels[ids["broken"]]["nextAttempt"].startswith("2026-06-01T12:30")
    working = channels[ids["working"]]
    assert working["state"] == "ok"
    assert working["lastSuccess"].startswith("2026-06-01T09:00")
    assert working["nextAttempt"] is None
    assert body["alertChannels"] is None
    assert body["alertTargets"] == [ids["working"]]
    alerts = {(a["subjectKind"], a["subjectId"]): a for a in body["alerts"]}
    assert set(alerts) == {
        ("source", ids["dead"]),
        ("channel", ids["broken"]),
        ("news", ids["news"]),
    }
    assert all(a["state"] == "failing" and a["notifiedState"] is None for a in alerts.values())
    assert body["truncated"] is False


def test_another_organizations_key_sees_none_of_it(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    a_ids = seed(api_engine, org_a)
    with unit_of_work(api_engine) as session:
        check_health(session, HealthPolicy(), now=NEXT_FETCH)

    response = client.get("/health", headers=org_b.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["searches"] == body["sources"] == body["channels"] == body["alerts"] == []
    for a_id in a_ids.values():
        assert a_id not in response.text


def test_a_source_two_organizations_follow_shows_each_only_its_own_searches(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    a_ids = seed(api_engine, org_a)
    with unit_of_work(api_engine) as session:
        organization = session.get(Organization, org_b.id)
        assert organization is not None
        theirs = factories.news(session, organization, name="Theirs")
        session.add(NewsSource(organizationId=org_b.id, newsId=theirs.id, sourceId=a_ids["dead"]))
        theirs_id = theirs.id

    a_body = client.get("/health", headers=org_a.headers).json()
    b_body = client.get("/health", headers=org_b.headers).json()

    assert by_id(a_body["sources"])[a_ids["dead"]]["newsIds"] == [a_ids["news"]]
    assert [s["newsIds"] for s in b_body["sources"]] == [[theirs_id]]
    assert theirs_id not in str(a_body)


def test_alert_channels_are_set_to_own_channels_and_back_to_the_default(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    ids = seed(api_engine, org_a)

    response = client.put(
        "/health/alert-channels",
        json={"channelIds": [ids["working"], ids["broken"], ids["working"]]},
        headers=org_a.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "alertChannels": [ids["working"], ids["broken"]],  # repeats dropped
        "alertTargets": [ids["working"]],  # the broken one cannot take alerts now
    }
    assert client.get("/health", headers=org_a.headers).json()["alertChannels"] == [
        ids["working"],
        ids["broken"],
    ]
    with unit_of_work(api_engine) as session:
        audit = session.scalars(
            select(AuditLog).where(AuditLog.action == "health.alert_channels")
        ).one()
        assert audit.organizationId == org_a.id

    back = client.put("/health/alert-channels", json={"channelIds": None}, headers=org_a.headers)
    assert back.json() == {"alertChannels": None, "alertTargets": [ids["working"]]}


def test_an_alert_channel_of_another_organization_is_refused_naming_it(
    client: TestClient, api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> None:
    a_ids = seed(api_engine, org_a)
    b_ids = seed(api_engine, org_b)

    response = client.put(
        "/health/alert-channels",
        json={"channelIds": [a_ids["working"], b_ids["working"]]},
        headers=org_a.headers,
    )

    assert response.status_code == 422, response.text
    [field] = response.json()["error"]["fields"]
    assert field["field"] == "channelIds.1"
    assert f"no channel {b_ids['working']} in this organization" in field["message"]
    with unit_of_work(api_engine) as session:
        stored = session.scalar(
            select(Organization.alertChannels).where(Organization.id == org_a.id)
        )
        assert stored is None  # nothing stored


def test_alert_channels_refuse_bad_input(client: TestClient, org_a: Tenant) -> None:
    for body, field in (
        ({"channelIds": "abc"}, "channelIds"),
        ({"channelIds": [""]}, "channelIds.0"),
        ({"channelIds": ["x"] * 51}, "channelIds"),
        ({}, "channelIds"),
        ({"channelIds": [], "extra": 1}, "extra"),
    ):
        response = client.put("/health/alert-channels", json=body, headers=org_a.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field, body


def test_health_needs_a_key_and_its_permissions(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    from tests.api.conftest import add_key  # noqa: PLC0415

    assert client.get("/health").status_code == 401
    reader = add_key(api_engine, org_a, permissions={"news": ["read"]})
    assert client.get("/health", headers={"x-api-key": reader}).status_code == 200
    response = client.put(
        "/health/alert-channels", json={"channelIds": None}, headers={"x-api-key": reader}
    )
    assert response.status_code == 403
    assert "channels:write" in response.text


def test_an_inactive_search_and_a_deactivated_channel_are_shown_as_such(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    ids = seed(api_engine, org_a)
    with unit_of_work(api_engine) as session:
        session.execute(update(Channel).where(Channel.id == ids["working"]).values(isActive=False))
        from core.db.models import News  # noqa: PLC0415

        session.execute(update(News).where(News.id == ids["news"]).values(isActive=False))
        session.execute(update(Delivery).values(state="sent"))

    body = client.get("/health", headers=org_a.headers).json()

    [search] = body["searches"]
    assert (search["state"], search["nextAttempt"]) == ("inactive", None)
    channels = by_id(body["channels"])
    assert channels[ids["working"]]["isActive"] is False
    assert channels[ids["broken"]]["nextAttempt"] is None  # nothing pending any more
    assert body["alertTargets"] == []
