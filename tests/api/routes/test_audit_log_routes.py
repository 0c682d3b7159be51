"""GET /audit-log: every mutation with its key, request id and address, filters, stable cursor
pages, only the organization's own entries, and only for keys granted audit:read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core.db.models import AuditLog
from core.db.session import unit_of_work
from tests.api.conftest import CLIENT_ADDRESS, Tenant, another_key

WHEN = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def log(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = client.get("/audit-log", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def entry(engine: Engine, organization_id: str | None, action: str, **fields: Any) -> str:
    """One audit row written as a mutation would (its id orders it after the last)."""
    with unit_of_work(engine) as session:
        row = AuditLog(organizationId=organization_id, actorType="apikey", action=action, **fields)
        session.add(row)
        session.flush()
        return row.id


def test_each_mutation_appears_with_its_key_and_request_id_newest_first(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    editor = another_key(api_engine, org_a, permissions={"teams": ["write"]})
    created = client.post(
        "/teams", json={"name": "Research"}, headers={**org_a.headers, "x-request-id": "req-1"}
    )
    assert created.status_code == 201, created.text
    team_id = created.json()["id"]
    renamed = client.patch(
        f"/teams/{team_id}", json={"name": "Desk"}, headers={**editor.headers, "x-request-id": "r2"}
    )
    assert renamed.status_code == 200, renamed.text
    items = log(client, org_a)["items"]
    shown = [
        (i["action"], i["actorType"], i["actorId"], i["targetType"], i["targetId"], i["requestId"])
        for i in items
    ]
    assert shown == [
        ("team.update", "apikey", editor.key_id, "team", team_id, "r2"),
        ("team.create", "apikey", org_a.key_id, "team", team_id, "req-1"),
    ]
    assert items[0]["details"] == {"name": "Desk"}
    assert [i["ipAddress"] for i in items] == [CLIENT_ADDRESS, CLIENT_ADDRESS]
    # a read is not a mutation: reading the log adds nothing to it
    assert len(log(client, org_a)["items"]) == 2


def test_filters_by_key_action_target_and_time(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    early = entry(api_engine, org_a.id, "key.create", actorId="k1", targetType="apikey",
                  targetId="t1", createdAt=WHEN)  # fmt: skip
    rotated = entry(api_engine, org_a.id, "key.rotate", actorId="k2", targetType="apikey",
                    targetId="t1", createdAt=WHEN + timedelta(hours=1))  # fmt: skip
    channel = entry(api_engine, org_a.id, "channel.update", actorId="k1", targetType="channel",
                    targetId="c1", createdAt=WHEN + timedelta(hours=2))  # fmt: skip

    def ids(**params: Any) -> list[str]:
        return [i["id"] for i in log(client, org_a, **params)["items"]]

    assert ids(actorId="k1") == [channel, early]
    assert ids(action="key.rotate") == [rotated]
    assert ids(action="key.*") == [rotated, early]
    assert ids(action="key") == []  # exact unless it ends with .*
    assert ids(targetType="apikey", targetId="t1") == [rotated, early]
    assert ids(actorType="operator") == []
    assert ids(since="2026-11-20T10:00:00Z") == [channel, rotated]
    assert ids(until="2026-11-20T10:00:00Z") == [early]  # until is exclusive
    assert ids(since="2026-11-20T09:30:00+00:00", until="2026-11-20T10:30:00Z") == [rotated]
    assert ids(actorId="k1", action="key.*") == [early]
    assert ids(since="2026-11-20T10:00:00Z", until="2026-11-20T10:00:00Z") == []  # empty window


def test_cursor_pages_hold_still_while_entries_are_added(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    written = [entry(api_engine, org_a.id, "news.update", actorId="k") for _ in range(5)]
    newest_first = written[::-1]
    first = log(client, org_a, limit=2, actorId="k")
    assert [i["id"] for i in first["items"]] == newest_first[:2]
    entry(api_engine, org_a.id, "news.update", actorId="k")  # a new entry meanwhile
    entry(api_engine, org_a.id, "news.delete", actorId="other")
    second = log(client, org_a, limit=2, actorId="k", cursor=first["nextCursor"])
    assert [i["id"] for i in second["items"]] == newest_first[2:4]
    third = log(client, org_a, limit=2, actorId="k", cursor=second["nextCursor"])
    assert [i["id"] for i in third["items"]] == newest_first[4:]
    assert third["nextCursor"] is None


def test_only_the_organizations_own_entries_are_shown(
    client: TestClient, org_a: Tenant, org_b: Tenant, api_engine: Engine, operator_key: str
) -> None:
    mine = entry(api_engine, org_a.id, "news.create", actorId=org_a.key_id, requestId="a-req")
    theirs = entry(api_engine, org_b.id, "news.create", actorId=org_b.key_id, requestId="b-req")
    entry(api_engine, None, "ops.login", actorId="op")  # operator-wide, no organization
    # an operator acting on org B is in B's log (and only there), as the operator's act
    renamed = client.patch(
        f"/operator/organizations/{org_b.id}",
        json={"name": "Org B renamed"},
        headers={"x-api-key": operator_key},
    )
    assert renamed.status_code == 200, renamed.text
    a_items = log(client, org_a)["items"]
    assert [i["id"] for i in a_items] == [mine]
    assert theirs not in str(a_items) and "b-req" not in str(a_items)
    b_items = log(client, org_b)["items"]
    assert [(i["action"], i["actorType"]) for i in b_items] == [
        ("organization.update", "operator"),
        ("news.create", "apikey"),
    ]
    # naming another organization's entry in a filter reveals nothing either
    assert log(client, org_a, targetId=theirs)["items"] == []


def test_reading_the_log_needs_audit_read(
    client: TestClient, org_a: Tenant, api_engine: Engine
) -> None:
    everything_else = another_key(
        api_engine, org_a, permissions={"keys": ["read", "write"], "news": ["read"]}
    )
    refused = client.get("/audit-log", headers=everything_else.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "missing permission audit:read"
    auditor = another_key(api_engine, org_a, permissions={"audit": ["read"]})
    assert client.get("/audit-log", headers=auditor.headers).status_code == 200
    # no write action exists for the log
    bad = client.post(
        "/keys",
        json={"name": "x", "permissions": {"audit": ["write"]}},
        headers=org_a.headers,
    )
    assert bad.status_code == 422


def test_bad_filters_are_named(client: TestClient, org_a: Tenant) -> None:
    for params, field in (
        ({"actorType": "robot"}, "actorType"),
        ({"action": "x" * 65}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
    ):
        response = client.get("/audit-log", headers=org_a.headers, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field, response.text
