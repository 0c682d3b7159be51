"""Operator routes over dead letters and the tenant's run replay, on a real in-process
broker with a real worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from core.clock import utcnow
from core.config import Settings
from core.db.models import AuditLog, Organization, Run
from core.db.session import unit_of_work
from core.scheduling.runs import claim_run, complete_run, create_manual_run
from tests.api.conftest import FakeClock, Tenant
from tests.support import factories, steps
from tests.support.dead_letter_world import FlakyWorld, flaky_world, wait_until
from workers.runs import declare_run_actor, enqueue_runs


@pytest.fixture
def world() -> Iterator[FlakyWorld]:
    with flaky_world() as built:
        yield built


def test_operator_lists_replays_and_purges_dead_letters(
    world: FlakyWorld, api_engine: Engine, operator_key: str, org_a: Tenant
):
    for number in (1, 2):
        world.send(f"m{number}", number)
    world.wait_dead(2)
    app = create_app(Settings(), api_engine, broker=world.broker, clock=FakeClock())
    ops = {"x-api-key": operator_key}
    with TestClient(app) as client:
        assert client.get("/operator/dead-letters/fetch", headers=org_a.headers).status_code == 403
        listed = client.get("/operator/dead-letters/fetch", headers=ops).json()
        assert {d["messageId"] for d in listed} == {"m1", "m2"}
        assert all(d["actor"] == "flaky" and "boom" in (d["traceback"] or "") for d in listed)
        assert client.get("/operator/dead-letters/nope", headers=ops).status_code == 422

        world.fail = False
        assert client.post("/operator/dead-letters/fetch/m1/replay", headers=ops).status_code == 202
        wait_until(lambda: world.done == 1)
        assert client.post("/operator/dead-letters/fetch/m1/replay", headers=ops).status_code == 404
        purged = client.delete("/operator/dead-letters/fetch", headers=ops).json()
        assert purged == {"purged": 1}
        assert client.get("/operator/dead-letters/fetch", headers=ops).json() == []
    with unit_of_work(api_engine) as s:
        actions = set(s.scalars(select(AuditLog.action)))
    assert {"deadletter.replay", "deadletter.purge"} <= actions


def test_tenant_replays_its_failed_run_once(client: TestClient, api_engine: Engine, org_a: Tenant):
    with unit_of_work(api_engine) as s:
        organization = s.get(Organization, org_a.id)
        assert organization is not None
        search = factories.news(s, organization)
        run = Run(
            organizationId=org_a.id,
            newsId=search.id,
            trigger="manual",
            state="failed",
            attempts=5,
            scheduledFor=datetime(2026, 11, 24, tzinfo=UTC),
            error={"error": "gave up"},
        )
        s.add(run)
        s.flush()
        run_id = run.id
    answer = client.post(f"/runs/{run_id}/replay", headers=org_a.headers)
    assert answer.status_code == 202 and answer.json()["runId"] == run_id
    with unit_of_work(api_engine) as s:
        replayed = s.get(Run, run_id)
        assert replayed is not None and replayed.state == "queued" and replayed.attempts == 0
    again = client.post(f"/runs/{run_id}/replay", headers=org_a.headers)
    assert again.status_code == 409


def test_a_dead_letter_whose_run_completed_since_is_listed_resolved_and_purged(
    world: FlakyWorld, api_engine: Engine, operator_key: str, org_a: Tenant
):
    """The run's first attempt outlives its time limit (a dead letter); another worker
    completes the run after the lease. Only the unresolved flaky letter stays."""
    with unit_of_work(api_engine) as s:
        organization = s.get(Organization, org_a.id)
        assert organization is not None
        search = factories.news(s, organization)
        run_id = create_manual_run(s, org_a.id, search.id, now=utcnow())[0]
    lease = timedelta(milliseconds=500)
    declare_run_actor(
        world.broker,
        api_engine,
        steps.blocking_step,
        lease=lease,
        time_limit=timedelta(milliseconds=200),
    )
    enqueue_runs(world.broker, [run_id])
    world.send("other", 1)
    world.wait_dead(2)
    with unit_of_work(api_engine) as s:  # another worker, after the lease
        claimed = claim_run(s, run_id, now=utcnow() + lease)
        assert claimed is not None and claimed.attempt == 2
        complete_run(s, claimed, now=utcnow(), stats=steps.record_step(s, claimed, utcnow()))
    app = create_app(Settings(), api_engine, broker=world.broker, clock=FakeClock())
    ops = {"x-api-key": operator_key}
    with TestClient(app) as client:
        listed = client.get("/operator/dead-letters/fetch", headers=ops).json()
        assert {d["messageId"]: d["resolved"] for d in listed} == {
            run_id: "run succeeded",
            "other": None,
        }
        # Both filters: that one letter, only if it is settled.
        kept = "/operator/dead-letters/fetch?resolved=true&messageId=other"
        assert client.delete(kept, headers=ops).json() == {"purged": 0}
        purged = client.delete("/operator/dead-letters/fetch?resolved=true", headers=ops)
        assert purged.json() == {"purged": 1}
        left = client.get("/operator/dead-letters/fetch", headers=ops).json()
        assert [d["messageId"] for d in left] == ["other"]
