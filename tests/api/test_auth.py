"""API keys at the door: validity, permissions, quota, refill, rate limit, key material.

Rows 33-39 of RELIABILITY.md. Each test runs on SQLite and PostgreSQL (``db_engine``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import string
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text, update

from core.db.models import ApiKey, Organization
from core.db.session import unit_of_work
from tests.api.conftest import FakeClock, Tenant, add_key, make_tenant

LIST = "/news"


@contextmanager
def counted_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def assert_error(response: Any, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == type_
    return body["error"]  # type: ignore[no-any-return]


def test_missing_key_is_401(client: TestClient) -> None:
    error = assert_error(client.get(LIST), 401, "unauthorized")
    assert "x-api-key" in error["message"]


@pytest.mark.parametrize(
    "key",
    [
        "nm_short",
        "x" * 80,  # no prefix
        "nmop_" + "a" * 64,  # operator prefix on a tenant route... still not an nm_ key
        "nm_" + "a" * 63 + "!",  # outside the alphabet
        "nm_" + "a" * 300,  # too long
    ],
)
def test_malformed_key_is_401_without_any_query(
    client: TestClient, api_engine: Engine, key: str
) -> None:
    with counted_queries(api_engine) as statements:
        error = assert_error(client.get(LIST, headers={"x-api-key": key}), 401, "unauthorized")
    assert statements == []
    assert error["message"] == "invalid API key"


def test_unknown_disabled_expired_and_inactive_org_keys_look_alike(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    unknown = "nm_" + "".join(secrets.choice(string.ascii_letters) for _ in range(64))
    disabled = add_key(api_engine, org_a)
    expired = add_key(api_engine, org_a, expires_at=clock.now + timedelta(seconds=5))
    with unit_of_work(api_engine) as session:
        session.execute(update(ApiKey).where(ApiKey.start == disabled[:6]).values(enabled=False))
    clock.advance(seconds=10)
    inactive = make_tenant(api_engine, "gone")
    with unit_of_work(api_engine) as session:
        session.execute(
            update(Organization).where(Organization.id == inactive.id).values(isActive=False)
        )
    bodies = []
    for key in (unknown, disabled, expired, inactive.key):
        response = client.get(LIST, headers={"Authorization": f"Bearer {key}"})
        bodies.append(assert_error(response, 401, "unauthorized"))
        assert response.headers["www-authenticate"] == "Bearer"
    assert all(b == bodies[0] for b in bodies)
    assert client.get(LIST, headers=org_a.headers).status_code == 200


def test_refused_key_writes_nothing(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    expired = add_key(api_engine, org_a, expires_at=clock.now - timedelta(seconds=1))
    with counted_queries(api_engine) as statements:
        client.get(LIST, headers={"x-api-key": expired})
    # the conditional UPDATE matched nothing, the explaining SELECT writes nothing
    with api_engine.connect() as conn:
        row = conn.execute(
            select(ApiKey.requestCount, ApiKey.lastRequest).where(ApiKey.start == expired[:6])
        ).one()
    assert tuple(row) == (0, None)
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1


def test_revoked_key_stops_working(client: TestClient, api_engine: Engine, org_a: Tenant) -> None:
    other = add_key(api_engine, org_a)
    key_id = client.get(LIST, headers={"x-api-key": other}).status_code
    assert key_id == 200
    listed = client.get("/keys", headers=org_a.headers).json()["items"]
    target = next(k for k in listed if k["start"] == other[:6])
    assert client.delete(f"/keys/{target['id']}", headers=org_a.headers).status_code == 204
    assert_error(client.get(LIST, headers={"x-api-key": other}), 401, "unauthorized")


def test_rotated_key_replaces_the_old_one(client: TestClient, org_a: Tenant) -> None:
    response = client.post(f"/keys/{org_a.key_id}/rotate", headers=org_a.headers)
    assert response.status_code == 201
    new_key = response.json()["key"]
    assert_error(client.get(LIST, headers=org_a.headers), 401, "unauthorized")
    assert client.get(LIST, headers={"x-api-key": new_key}).status_code == 200


def test_missing_permission_is_403_naming_it(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    reader = add_key(api_engine, org_a, permissions={"news": ["read"]})
    assert client.get(LIST, headers={"x-api-key": reader}).status_code == 200
    body = {"name": "x", "searchQuery": {"query": "ai", "sources": []}}
    error = assert_error(
        client.post(LIST, json=body, headers={"x-api-key": reader}), 403, "forbidden"
    )
    assert "news:write" in error["message"]


def test_a_key_cannot_grant_more_than_it_holds(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    limited = add_key(api_engine, org_a, permissions={"keys": ["read", "write"]})
    response = client.post(
        "/keys",
        json={"name": "escalate", "permissions": {"channels": ["write"]}},
        headers={"x-api-key": limited},
    )
    assert "channels:write" in assert_error(response, 403, "forbidden")["message"]


def test_tenant_key_on_operator_routes_is_403(client: TestClient, org_a: Tenant) -> None:
    assert_error(client.get("/operator/organizations", headers=org_a.headers), 403, "forbidden")


def test_operator_key_is_not_a_tenant_key(client: TestClient, operator_key: str) -> None:
    assert_error(client.get(LIST, headers={"x-api-key": operator_key}), 401, "unauthorized")
    assert (
        client.get("/operator/organizations", headers={"x-api-key": operator_key}).status_code
        == 200
    )


def test_quota_is_never_overspent_under_concurrency(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    key = add_key(api_engine, org_a, remaining=5)

    def call(_: int) -> int:
        status: int = client.get(LIST, headers={"x-api-key": key}).status_code
        return status

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(call, range(50)))
    assert statuses.count(200) == 5
    assert statuses.count(429) == 45
    with api_engine.connect() as conn:
        remaining = conn.scalar(select(ApiKey.remaining).where(ApiKey.start == key[:6]))
    assert remaining == 0
    refused = client.get(LIST, headers={"x-api-key": key})
    error = assert_error(refused, 429, "quota_exhausted")
    assert "no refill" in error["message"]
    assert "retry-after" not in refused.headers  # it never comes back: clients stop retrying


def test_refill_resets_remaining_after_the_interval(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    key = add_key(api_engine, org_a, remaining=2, refill_interval_ms=60_000, refill_amount=3)
    headers = {"x-api-key": key}
    assert [client.get(LIST, headers=headers).status_code for _ in range(3)] == [200, 200, 429]
    refused = client.get(LIST, headers=headers)
    assert_error(refused, 429, "quota_exceeded")
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    clock.advance(seconds=61)
    assert client.get(LIST, headers=headers).status_code == 200
    with api_engine.connect() as conn:
        row = conn.execute(
            select(ApiKey.remaining, ApiKey.lastRefillAt).where(ApiKey.start == key[:6])
        ).one()
    assert row.remaining == 2  # reset to refillAmount (3), then this request taken
    assert row.lastRefillAt == clock.now
    assert [client.get(LIST, headers=headers).status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limit_window_with_retry_after(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    key = add_key(api_engine, org_a, rate_limit_max=3, rate_limit_window_ms=10_000)
    headers = {"x-api-key": key}
    first = client.get(LIST, headers=headers)
    assert first.headers["ratelimit-limit"] == "3"
    assert first.headers["ratelimit-remaining"] == "2"
    assert [client.get(LIST, headers=headers).status_code for _ in range(2)] == [200, 200]
    clock.advance(seconds=4)
    refused = client.get(LIST, headers=headers)
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "6"
    assert refused.headers["ratelimit-remaining"] == "0"
    clock.advance(seconds=6)
    assert client.get(LIST, headers=headers).status_code == 200
    with api_engine.connect() as conn:
        row = conn.execute(
            select(ApiKey.requestCount, ApiKey.lastRequest).where(ApiKey.start == key[:6])
        ).one()
    assert (row.requestCount, row.lastRequest) == (1, clock.now)


def test_rate_limit_lets_exactly_max_through_concurrently(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    key = add_key(api_engine, org_a, rate_limit_max=10, rate_limit_window_ms=60_000)

    def call(_: int) -> Any:
        return client.get(LIST, headers={"x-api-key": key})

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(call, range(50)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 40
    assert all("retry-after" in r.headers for r in responses if r.status_code == 429)


def better_auth_hash(key: str) -> str:
    """Better Auth's defaultKeyHasher, written out independently of core.keys."""
    return (
        base64.b64encode(hashlib.sha256(key.encode()).digest(), altchars=b"-_").decode().rstrip("=")
    )


def test_key_hashed_by_better_auth_scheme_verifies(
    client: TestClient, api_engine: Engine, org_a: Tenant
) -> None:
    plaintext = "nm_" + "".join(secrets.choice(string.ascii_letters) for _ in range(64))
    with api_engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO apikeys (id, "organizationId", name, start, prefix, key, enabled,'
                ' "rateLimitEnabled", "requestCount", permissions, "createdAt", "updatedAt")'
                " VALUES (:id, :org, 'from better auth', :start, 'nm_', :hash, true, false, 0,"
                " :perms, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {
                "id": "BETTERAUTH0000000000000001",
                "org": org_a.id,
                "start": plaintext[:6],
                "hash": better_auth_hash(plaintext),
                "perms": '{"news":["read"]}',
            },
        )
    assert client.get(LIST, headers={"x-api-key": plaintext}).status_code == 200


def test_key_material_never_stored_or_logged(
    client: TestClient, api_engine: Engine, org_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = client.post("/keys", json={"name": "new"}, headers=org_a.headers)
    assert created.status_code == 201
    plaintext = created.json()["key"]
    client.get(LIST, headers={"x-api-key": plaintext})
    client.get(LIST, headers={"x-api-key": plaintext[:-1] + "Z"})
    listed = client.get("/keys", headers=org_a.headers).text
    assert plaintext not in listed and org_a.key not in listed
    with api_engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(select(ApiKey))]
        audit = conn.execute(text('SELECT * FROM "auditLogs"')).all()
    dump = repr(stored) + repr(audit)
    for secret in (plaintext, org_a.key):
        assert secret not in dump
        assert secret not in caplog.text
        assert secret[6:30] not in dump
