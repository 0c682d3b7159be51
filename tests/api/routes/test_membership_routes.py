"""Members, invitations (token once, stored hashed, expiry, accept/reject/cancel), teams."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from core.clock import utcnow
from core.db.models import AuditLog, Invitation
from core.db.session import unit_of_work
from core.keys import hash_key
from core.tenancy.members import add_member, user_for_email
from tests.api.conftest import Tenant


@pytest.fixture
def owner_id(api_engine: Engine, org_a: Tenant) -> str:
    with unit_of_work(api_engine) as session:
        user = user_for_email(session, "owner@a.example", "Owner")
        return add_member(session, org_a.id, user.id, "owner").id


def invite(client: TestClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    body.setdefault("email", "Ada@Example.com")
    response = client.post("/invitations", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_invitation_token_is_shown_once_stored_hashed_and_works_once(
    client: TestClient, org_a: Tenant, owner_id: str, api_engine: Engine
) -> None:
    created = invite(client, org_a, role="admin")
    token = created["token"]
    assert created["email"] == "ada@example.com" and created["status"] == "pending"
    listed = client.get("/invitations", headers=org_a.headers).text
    assert token not in listed
    with api_engine.connect() as conn:
        stored = conn.execute(select(Invitation)).one()
        audit = list(conn.scalars(select(AuditLog.details)))
    assert stored.tokenHash == hash_key(token) and token not in str(audit)
    accepted = client.post("/invitations/accept", json={"token": token, "name": "Ada"})
    assert accepted.status_code == 200, accepted.text
    member = accepted.json()["member"]
    assert (member["email"], member["role"], member["name"]) == ("ada@example.com", "admin", "Ada")
    assert client.post("/invitations/accept", json={"token": token}).status_code == 404
    members = client.get("/members", headers=org_a.headers).json()["items"]
    assert {m["role"] for m in members} == {"owner", "admin"}


def test_expired_canceled_and_rejected_invitations(
    client: TestClient, org_a: Tenant, owner_id: str, api_engine: Engine
) -> None:
    expired = invite(client, org_a)
    with unit_of_work(api_engine) as session:
        session.execute(
            update(Invitation)
            .where(Invitation.id == expired["id"])
            .values(expiresAt=utcnow() - timedelta(minutes=1))
        )
    assert client.post("/invitations/accept", json={"token": expired["token"]}).status_code == 404
    shown = client.get(f"/invitations/{expired['id']}", headers=org_a.headers).json()
    assert shown["status"] == "expired"
    canceled = invite(client, org_a, email="bob@example.com")
    response = client.post(f"/invitations/{canceled['id']}/cancel", headers=org_a.headers)
    assert response.json()["status"] == "canceled"
    assert client.post("/invitations/accept", json={"token": canceled["token"]}).status_code == 404
    rejected = invite(client, org_a, email="eve@example.com")
    assert (
        client.post("/invitations/reject", json={"token": rejected["token"]}).json()["status"]
        == "rejected"
    )


def test_the_last_owner_stays(client: TestClient, org_a: Tenant, owner_id: str) -> None:
    demote = client.patch(f"/members/{owner_id}", json={"role": "member"}, headers=org_a.headers)
    assert demote.status_code == 422
    assert client.delete(f"/members/{owner_id}", headers=org_a.headers).status_code == 422


def test_teams_and_their_members(
    client: TestClient, org_a: Tenant, org_b: Tenant, owner_id: str
) -> None:
    team = client.post("/teams", json={"name": "Research"}, headers=org_a.headers).json()
    duplicate = client.post("/teams", json={"name": "Research"}, headers=org_a.headers)
    assert (duplicate.status_code, duplicate.json()["error"]["type"]) == (409, "conflict")
    user_id = client.get(f"/members/{owner_id}", headers=org_a.headers).json()["userId"]
    path = f"/teams/{team['id']}/members"
    assert client.post(path, json={"userId": user_id}, headers=org_a.headers).status_code == 204
    listed = client.get(path, headers=org_a.headers).json()["items"]
    assert [m["id"] for m in listed] == [owner_id]
    # a user who is not a member of this organization cannot join its team
    outsider = client.post(path, json={"userId": "nobody"}, headers=org_a.headers)
    assert outsider.status_code == 404
    assert client.delete(f"{path}/{user_id}", headers=org_a.headers).status_code == 204
    renamed = client.patch(f"/teams/{team['id']}", json={"name": "R&D"}, headers=org_a.headers)
    assert renamed.json()["name"] == "R&D"
    assert client.delete(f"/teams/{team['id']}", headers=org_a.headers).status_code == 204
    assert client.get("/teams", headers=org_b.headers).json()["items"] == []
