"""Minting and rotating never outgrow the caller (row 61): expiry, quota, refill, rate.

A tenant key creates only keys it dominates: an omitted expiry or rate limit is inherited,
an omitted quota of a limited caller is a 422, and a new key's quota (and refill) is carved
out of the caller's in the same transaction. Rotation keeps every limit with its usage.
Operator-made keys are not bound.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from core.db.models import ApiKey
from core.db.session import unit_of_work
from core.errors import Forbidden
from core.keys import parse_permissions
from core.tenancy.key_admin import mint_api_key
from core.tenancy.key_limits import KeyLimits
from tests.api.conftest import FakeClock, Tenant, another_key

NEWS_READ = {"news": ["read"]}
MINUTE_MS = 60_000


def mint(client: TestClient, caller: Tenant, **body: Any) -> httpx.Response:
    payload = {"name": "child", "permissions": NEWS_READ, **body}
    response: httpx.Response = client.post("/keys", json=payload, headers=caller.headers)
    return response


def stored(engine: Engine, key_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(ApiKey).where(ApiKey.id == key_id)).one()


def key_count(engine: Engine, organization_id: str) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(ApiKey.organizationId == organization_id)
        return conn.scalar(query) or 0


def refused_field(response: httpx.Response, status: int = 403) -> list[str]:
    assert response.status_code == status, response.text
    return [f["field"] for f in response.json()["error"]["fields"]]


def test_a_minted_key_never_outlives_its_minter(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    soon = clock.now + timedelta(hours=1)
    caller = another_key(api_engine, org_a, expires_at=soon)
    inherited = mint(client, caller)
    assert inherited.status_code == 201, inherited.text
    assert stored(api_engine, inherited.json()["id"]).expiresAt == soon
    earlier = soon - timedelta(minutes=10)
    given = mint(client, caller, expiresAt=earlier.isoformat())
    assert stored(api_engine, given.json()["id"]).expiresAt == earlier
    later = mint(client, caller, expiresAt=(soon + timedelta(seconds=1)).isoformat())
    assert refused_field(later) == ["expiresAt"]
    assert key_count(api_engine, org_a.id) == 4  # org key, caller, two children


def test_a_minted_quota_is_carved_out_of_the_minters(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    caller = another_key(api_engine, org_a, remaining=10)
    assert refused_field(mint(client, caller), 422) == ["remaining"]  # 9 left
    child = mint(client, caller, remaining=4)  # 8 left, 4 given away
    assert child.status_code == 201, child.text
    assert child.json()["remaining"] == 4
    assert stored(api_engine, caller.key_id).remaining == 4
    assert refused_field(mint(client, caller, remaining=4)) == ["remaining"]  # 3 left
    assert stored(api_engine, caller.key_id).remaining == 3
    assert key_count(api_engine, org_a.id) == 3
    # the child spends its own quota, not the minter's
    assert client.get("/news", headers={"x-api-key": child.json()["key"]}).status_code == 200
    assert stored(api_engine, caller.key_id).remaining == 3


def test_a_minted_refill_is_bounded_and_carved_out(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    no_refill = another_key(api_engine, org_a, remaining=100)
    refill = {"remaining": 1, "refillAmount": 1, "refillInterval": MINUTE_MS}
    assert refused_field(mint(client, no_refill, **refill)) == ["refillAmount"]
    caller = another_key(
        api_engine, org_a, remaining=100, refill_amount=10, refill_interval_ms=MINUTE_MS
    )
    faster = {"remaining": 1, "refillAmount": 1, "refillInterval": 1000}  # 60 a minute
    assert refused_field(mint(client, caller, **faster)) == ["refillAmount"]
    burst = {"remaining": 1, "refillAmount": 11, "refillInterval": 10 * MINUTE_MS}
    assert refused_field(mint(client, caller, **burst)) == ["refillAmount"]
    assert mint(client, caller, remaining=1, refillAmount=4, refillInterval=MINUTE_MS).is_success
    assert stored(api_engine, caller.key_id).refillAmount == 6
    hourly = {"remaining": 1, "refillAmount": 1, "refillInterval": 60 * MINUTE_MS}
    assert mint(client, caller, **hourly).is_success  # a sixtieth of a minute's: rounded up
    assert stored(api_engine, caller.key_id).refillAmount == 5
    assert mint(client, caller, remaining=1, refillAmount=5, refillInterval=MINUTE_MS).is_success
    row = stored(api_engine, caller.key_id)
    assert (row.refillAmount, row.refillInterval) == (None, None)  # all of it given away
    assert row.remaining == 100 - 5 - 3  # five requests, three children of 1
    assert refused_field(mint(client, caller, **refill)) == ["refillAmount"]


def test_a_minted_rate_limit_is_inherited_or_bounded(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    caller = another_key(api_engine, org_a, rate_limit_max=10, rate_limit_window_ms=MINUTE_MS)
    inherited = mint(client, caller).json()
    assert (inherited["rateLimitMax"], inherited["rateLimitTimeWindow"]) == (10, MINUTE_MS)
    for more in ((11, MINUTE_MS), (10, MINUTE_MS - 1000), (1, 1000)):
        response = mint(client, caller, rateLimitMax=more[0], rateLimitTimeWindow=more[1])
        assert refused_field(response) == ["rateLimitMax"], more
    slower = mint(client, caller, rateLimitMax=2, rateLimitTimeWindow=MINUTE_MS)
    assert slower.json()["rateLimitMax"] == 2


def test_rotation_carries_the_rate_limit_window_over(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    caller = another_key(api_engine, org_a, rate_limit_max=3, rate_limit_window_ms=MINUTE_MS)
    assert client.get("/news", headers=caller.headers).status_code == 200
    rotated = client.post(f"/keys/{caller.key_id}/rotate", headers=caller.headers).json()
    headers = {"x-api-key": rotated["key"]}
    assert client.get("/news", headers=headers).status_code == 200
    assert client.get("/news", headers=headers).status_code == 429  # not a fresh window


def test_rotation_keeps_expiry_quota_and_refill(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    soon = clock.now + timedelta(hours=1)
    caller = another_key(
        api_engine,
        org_a,
        expires_at=soon,
        remaining=5,
        refill_amount=5,
        refill_interval_ms=MINUTE_MS,
    )
    started = stored(api_engine, caller.key_id).createdAt  # its refill clock's start
    clock.advance(seconds=30)
    rotated = client.post(f"/keys/{caller.key_id}/rotate", headers=caller.headers).json()
    row = stored(api_engine, rotated["id"])
    assert (row.expiresAt, row.remaining, row.refillAmount) == (soon, 4, 5)
    assert row.lastRefillAt == started


def test_operator_created_keys_are_not_bound(
    client: TestClient, api_engine: Engine, org_a: Tenant, operator_key: str
) -> None:
    response = client.post(
        f"/operator/organizations/{org_a.id}/keys",
        json={"name": "ops-made", "permissions": NEWS_READ},
        headers={"x-api-key": operator_key},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["remaining"], response.json()["expiresAt"]) == (None, None)


def test_carve_out_is_exact_under_concurrency(api_engine: Engine, org_a: Tenant) -> None:
    minter = another_key(api_engine, org_a, remaining=5)
    wanted = KeyLimits(permissions=parse_permissions('{"news": ["read"]}'), remaining=1)

    def attempt(_: int) -> bool:
        try:
            with unit_of_work(api_engine) as session:
                mint_api_key(session, org_a.id, minter.key_id, name="c", wanted=wanted)
        except Forbidden:
            return False
        return True

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count(True) == 5
    assert stored(api_engine, minter.key_id).remaining == 0
    assert key_count(api_engine, org_a.id) == 2 + 5


def test_carve_out_through_the_api_conserves_the_quota(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    minter = another_key(api_engine, org_a, remaining=40)

    def call(_: int) -> int:
        status: int = mint(client, minter, remaining=3).status_code
        return status

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(call, range(20)))
    assert set(statuses) <= {201, 403, 429}
    created = statuses.count(201)
    counted = len(statuses) - statuses.count(429)  # every request the key check let in
    left = stored(api_engine, minter.key_id).remaining
    assert left >= 0 and created >= 1
    assert left + counted + 3 * created == 40
    assert key_count(api_engine, org_a.id) == 2 + created
