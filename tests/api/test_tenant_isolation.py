"""Org A's key against org B's data, for every route of the OpenAPI spec (rows 30-32).

The routes are read from the spec, so a new route is covered the day it is added: every
path parameter must name one of B's objects below (the test fails on an unknown one),
and every request body must carry an example in the spec (used as the body here).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.clock import utcnow
from core.db.base import Base
from core.db.models import NewsChannel, Organization, Run
from core.db.session import unit_of_work
from core.news.feed_tokens import issue_feed_token
from core.scheduling.runs import create_manual_run
from core.tenancy.api_keys import create_api_key
from core.tenancy.invitations import create_invitation
from core.tenancy.members import add_member, user_for_email
from core.tenancy.teams import add_team_member, create_team
from tests.api.conftest import ALL_PERMISSIONS, Tenant
from tests.support import factories

#: Routes outside the tenant API (operator routes have their own 403 test).
NOT_TENANT = re.compile(r"^/(operator|healthz|readyz|metrics)")
SAME_URL = "https://example.com/same-story"


def seed(engine: Engine, tenant: Tenant) -> dict[str, str]:
    """One object of every kind for ``tenant``; returns path parameter name -> id."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization)
        schedule = factories.schedule(session, search)
        story = factories.story(session, search, SAME_URL)
        run_id, _ = create_manual_run(session, tenant.id, search.id, now=search.createdAt)
        key = create_api_key(session, tenant.id, name="spare", permissions={"news": ["read"]})
        channel = factories.channel(session, organization)
        session.add(NewsChannel(organizationId=tenant.id, newsId=search.id, channelId=channel.id))
        delivery = factories.delivery(session, channel, search, state="failed")
        user = user_for_email(session, f"owner@{organization.slug}.example")
        member = add_member(session, tenant.id, user.id, "owner")
        team = create_team(session, tenant.id, "Research")
        add_team_member(session, tenant.id, team.id, user.id)
        invitation = create_invitation(
            session, tenant.id, email="new@example.com", role="member", team_id=None, now=utcnow()
        ).invitation
        feed_token = issue_feed_token(session, tenant.id, search.id).token
        return {
            "newsId": search.id,
            "scheduleId": schedule.id,
            "storyId": story.id,
            "runId": run_id,
            "keyId": key.id,
            "channelId": channel.id,
            "deliveryId": delivery.id,
            "memberId": member.id,
            "userId": user.id,
            "teamId": team.id,
            "invitationId": invitation.id,
            "feedToken": feed_token,
        }


def snapshot(engine: Engine, organization_id: str) -> list[Any]:
    """Every row of every table that belongs to the organization."""
    rows: list[Any] = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "organizationId" in table.c:
                query = select(table).where(table.c.organizationId == organization_id)
                rows.extend(tuple(r) for r in conn.execute(query.order_by(*table.primary_key)))
    return rows


def example_body(spec: dict[str, Any], operation: dict[str, Any]) -> Any:
    body = operation.get("requestBody")
    if body is None:
        return None
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema.get("examples"), f"{operation['operationId']}: body schema needs an example"
    return schema["examples"][0]


def token_params(operation: dict[str, Any], ids: dict[str, str]) -> dict[str, str]:
    """The feed token of ``ids``' organization for routes opened by one (public feeds)."""
    names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    return {"token": ids["feedToken"]} if "token" in names else {}


def tenant_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if not NOT_TENANT.match(path)
        for method, operation in item.items()
    ]


@pytest.fixture
def seeded(
    api_engine: Engine, org_a: Tenant, org_b: Tenant
) -> tuple[dict[str, str], dict[str, str]]:
    with unit_of_work(api_engine) as session:
        create_api_key(session, org_b.id, name="b full", permissions=ALL_PERMISSIONS)
    return seed(api_engine, org_a), seed(api_engine, org_b)


def test_every_route_with_an_id_answers_404_for_another_orgs_object(
    client: TestClient,
    api_engine: Engine,
    org_a: Tenant,
    org_b: Tenant,
    seeded: tuple[dict[str, str], dict[str, str]],
) -> None:
    a_ids, b_ids = seeded
    spec = client.app.openapi()  # type: ignore[attr-defined]
    before = snapshot(api_engine, org_b.id)
    checked = 0
    for path, method, operation in tenant_operations(spec):
        params = re.findall(r"{(\w+)}", path)
        if not params:
            continue
        unknown = set(params) - set(b_ids)
        assert not unknown, f"{path}: teach this test B's object for {unknown}"
        url = path.format(**b_ids)
        response = client.request(
            method,
            url,
            headers=org_a.headers,
            params=token_params(operation, a_ids),  # A's feed token on B's search
            json=example_body(spec, operation),
        )
        assert response.status_code == 404, f"{method.upper()} {path}: {response.text}"
        for b_id in b_ids.values():
            assert b_id not in response.text
        checked += 1
    assert checked >= 10
    assert snapshot(api_engine, org_b.id) == before
    # and the ids were real: B's own key reads them
    for path, method, operation in tenant_operations(spec):
        if method == "get" and "{" in path:
            response = client.get(
                path.format(**b_ids),
                headers={"x-api-key": org_b.key},
                params=token_params(operation, b_ids),
            )
            assert response.status_code == 200, f"GET {path} with B's key: {response.text}"


def test_lists_never_contain_another_orgs_rows(
    client: TestClient, org_a: Tenant, seeded: tuple[dict[str, str], dict[str, str]]
) -> None:
    a_ids, b_ids = seeded
    spec = client.app.openapi()  # type: ignore[attr-defined]
    lists = [p for p, m, _ in tenant_operations(spec) if m == "get" and "{" not in p]
    assert {"/news", "/stories", "/runs", "/keys", "/channels", "/deliveries"} <= set(lists)
    for path in lists:
        response = client.get(path, headers=org_a.headers)
        assert response.status_code == 200, path
        for b_id in b_ids.values():
            assert b_id not in response.text, path
    stories = client.get("/stories", headers=org_a.headers).json()["items"]
    assert [s["id"] for s in stories] == [a_ids["storyId"]]


def test_organization_id_in_a_body_is_refused(
    client: TestClient, org_a: Tenant, org_b: Tenant, api_engine: Engine
) -> None:
    body = {"name": "x", "searchQuery": {"query": "ai", "sources": []}, "organizationId": org_b.id}
    response = client.post("/news", json=body, headers=org_a.headers)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "organizationId"
    with api_engine.connect() as conn:
        assert conn.scalar(select(Run.id).where(Run.organizationId == org_b.id)) is None
