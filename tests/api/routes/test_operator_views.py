"""Operator views added with issue 8's remaining routes: a tenant created with its owner,
failing channels across tenants, scheduler lag, queue depths."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from core.db.models import Channel, Member, User
from core.db.session import unit_of_work
from tests.api.conftest import Tenant
from tests.support import factories


def test_organization_created_with_its_owner(
    client: TestClient, operator_key: str, api_engine: Engine
) -> None:
    body = {"name": "Acme", "owner": {"email": "Ada@Acme.example", "name": "Ada"}}
    response = client.post(
        "/operator/organizations", json=body, headers={"x-api-key": operator_key}
    )
    assert response.status_code == 201, response.text
    with api_engine.connect() as conn:
        row = conn.execute(select(Member.role, Member.organizationId, User.email).join(User)).one()
    assert tuple(row) == ("owner", response.json()["id"], "ada@acme.example")


def test_failing_channels_lag_and_queues(
    client: TestClient, operator_key: str, org_a: Tenant, api_engine: Engine
) -> None:
    with unit_of_work(api_engine) as session:
        from core.db.models import Organization  # noqa: PLC0415

        organization = session.get(Organization, org_a.id)
        assert organization is not None
        broken = factories.channel(session, organization)
        factories.channel(session, organization)
        session.execute(update(Channel).where(Channel.id == broken.id).values(status="broken"))
    headers = {"x-api-key": operator_key}
    failing = client.get("/operator/channels/failing", headers=headers).json()["items"]
    assert [c["id"] for c in failing] == [broken.id]
    lag = client.get("/operator/scheduler/lag", headers=headers).json()
    assert lag == {"overdueScheduleS": None, "oldestQueuedRunS": None}
    queues = client.get("/operator/queues", headers=headers).json()
    assert {q["queue"] for q in queues} == {"fetch", "refresh", "deliver"}
    assert client.get("/operator/queues", headers=org_a.headers).status_code == 403
