"""Members (the owner role is an operator's to give and take) and teams; invitations are
in test_invitation_routes.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from core.db.session import unit_of_work
from core.tenancy.members import add_member, user_for_email
from tests.api.conftest import Tenant


@pytest.fixture
def owner_id(api_engine: Engine, org_a: Tenant) -> str:
    with unit_of_work(api_engine) as session:
        user = user_for_email(session, "owner@a.example", "Owner")
        return add_member(session, org_a.id, user.id, "owner").id


def test_tenant_keys_never_grant_or_take_the_owner_role(
    client: TestClient, org_a: Tenant, owner_id: str, operator_key: str, api_engine: Engine
) -> None:
    with unit_of_work(api_engine) as session:
        user = user_for_email(session, "second@a.example")
        member_id = add_member(session, org_a.id, user.id, "member").id
        second_owner = add_member(
            session, org_a.id, user_for_email(session, "third@a.example").id, "owner"
        ).id
    for method, member, body in (
        ("patch", member_id, {"role": "owner"}),
        ("patch", second_owner, {"role": "admin"}),
        ("delete", second_owner, None),
    ):
        response = client.request(method, f"/members/{member}", json=body, headers=org_a.headers)
        assert response.status_code == 403, f"{method} {body}: {response.text}"
        assert response.json()["error"]["fields"][0]["field"] == "role"
    roles = {
        m["id"]: m["role"] for m in client.get("/members", headers=org_a.headers).json()["items"]
    }
    assert roles == {owner_id: "owner", member_id: "member", second_owner: "owner"}
    assert client.patch(
        f"/members/{member_id}", json={"role": "admin"}, headers=org_a.headers
    ).is_success
    # the operator may, and the last owner still stays
    operator = {"x-api-key": operator_key}
    path = f"/operator/organizations/{org_a.id}/members"
    demoted = client.post(
        path, json={"email": "third@a.example", "role": "member"}, headers=operator
    )
    assert demoted.json()["role"] == "member", demoted.text
    last = client.post(path, json={"email": "owner@a.example", "role": "member"}, headers=operator)
    assert last.status_code == 422, last.text
    assert client.delete(f"/members/{second_owner}", headers=org_a.headers).status_code == 204


def test_an_operator_adds_a_member_without_any_mail(
    client: TestClient, org_a: Tenant, operator_key: str
) -> None:
    response = client.post(
        f"/operator/organizations/{org_a.id}/members",
        json={"email": "Ada@Example.com", "name": "Ada", "role": "owner"},
        headers={"x-api-key": operator_key},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["email"], response.json()["role"]) == ("ada@example.com", "owner")
    members = client.get("/members", headers=org_a.headers).json()["items"]
    assert [m["name"] for m in members] == ["Ada"]


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
