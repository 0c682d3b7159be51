"""A weaker key against a stronger one on every key-acting route (row 60).

The routes come from the OpenAPI document: every operation under ``/keys`` with a
``{keyId}`` parameter, and ``POST /keys``, so a route added tomorrow is walked too. Each
variant makes the caller weaker than the target in one dimension only (permissions,
expiry, quota, refill, rate limit); every non-reading operation must answer 403 naming
that field and leave every other key as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import ApiKey
from tests.api.conftest import ALL_PERMISSIONS, FakeClock, Tenant, another_key

#: What the weaker key may do in the permissions variant: manage keys, read news.
KEYS_AND_NEWS = {"keys": ["read", "write"], "news": ["read"]}
#: Permissions of targets and mint requests where permissions are not the point.
NEWS_READ = {"news": ["read"]}
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Variant:
    """The caller's key fields, the stronger target's, the field named in the 403, and a
    ``POST /keys`` body asking for more than the caller has in that dimension."""

    field: str
    caller: dict[str, Any]
    target: dict[str, Any]
    mint: dict[str, Any]


def variants(now: datetime) -> dict[str, Variant]:
    soon = now + timedelta(hours=1)
    later = soon + timedelta(hours=1)
    too_late = {"expiresAt": later.isoformat()}
    quota = {"remaining": 100}
    refill = {"remaining": 100, "refill_amount": 10, "refill_interval_ms": MINUTE_MS}
    rate = {"rate_limit_max": 100, "rate_limit_window_ms": MINUTE_MS}
    return {
        "permissions": Variant(
            "permissions",
            {"permissions": KEYS_AND_NEWS},
            {"permissions": ALL_PERMISSIONS},
            {"permissions": {"channels": ["write"]}},
        ),
        "no expiry": Variant("expiresAt", {"expires_at": soon}, {}, too_late),
        "later expiry": Variant("expiresAt", {"expires_at": soon}, {"expires_at": later}, too_late),
        "no quota": Variant("remaining", quota, {}, {"remaining": 1000}),
        "more quota": Variant("remaining", quota, {"remaining": 500}, {"remaining": 500}),
        "refill": Variant(
            "refillAmount",
            quota,
            {"remaining": 10, "refill_amount": 1, "refill_interval_ms": MINUTE_MS},
            {"remaining": 10, "refillAmount": 1, "refillInterval": MINUTE_MS},
        ),
        "faster refill": Variant(
            "refillAmount",
            refill,
            {"remaining": 10, "refill_amount": 10, "refill_interval_ms": 1000},
            {"remaining": 10, "refillAmount": 10, "refillInterval": 1000},
        ),
        "larger refill": Variant(
            "refillAmount",
            refill,
            {"remaining": 10, "refill_amount": 20, "refill_interval_ms": 2 * MINUTE_MS},
            {"remaining": 10, "refillAmount": 20, "refillInterval": 2 * MINUTE_MS},
        ),
        "no rate limit": Variant(
            "rateLimitMax", rate, {}, {"rateLimitMax": 1000, "rateLimitTimeWindow": MINUTE_MS}
        ),
        "faster rate": Variant(
            "rateLimitMax",
            rate,
            {"rate_limit_max": 100, "rate_limit_window_ms": 1000},
            {"rateLimitMax": 100, "rateLimitTimeWindow": 1000},
        ),
        "larger rate": Variant(
            "rateLimitMax",
            rate,
            {"rate_limit_max": 200, "rate_limit_window_ms": 2 * MINUTE_MS},
            {"rateLimitMax": 200, "rateLimitTimeWindow": 2 * MINUTE_MS},
        ),
    }


VARIANTS = sorted(variants(datetime.now()))


def key_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Every operation of the spec acting on one key, and ``POST /keys``."""
    acting = [
        (path, method)
        for path, item in spec["paths"].items()
        if path.startswith("/keys/") and "{keyId}" in path
        for method in item
    ]
    return [*acting, ("/keys", "post")]


def other_keys(engine: Engine, organization_id: str, caller_id: str) -> list[tuple[Any, ...]]:
    """Every key row of the organization but the caller's (whose usage counts change)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ApiKey)
            .where(ApiKey.organizationId == organization_id, ApiKey.id != caller_id)
            .order_by(ApiKey.id)
        )
        return [tuple(r) for r in rows]


def weaker_and_stronger(engine: Engine, org: Tenant, variant: Variant) -> tuple[Tenant, Tenant]:
    caller = another_key(engine, org, **{"permissions": ALL_PERMISSIONS, **variant.caller})
    target = another_key(engine, org, **{"permissions": NEWS_READ, **variant.target})
    return caller, target


@pytest.mark.parametrize("name", VARIANTS)
def test_every_key_acting_route_refuses_a_stronger_target(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock, name: str
) -> None:
    variant = variants(clock.now)[name]
    caller, target = weaker_and_stronger(api_engine, org_a, variant)
    operations = key_operations(client.app.openapi())  # type: ignore[attr-defined]
    assert {("/keys/{keyId}", "delete"), ("/keys/{keyId}/rotate", "post")} <= set(operations)
    before = other_keys(api_engine, org_a.id, caller.key_id)
    for path, method in operations:
        body = {"name": "more", "permissions": NEWS_READ, **variant.mint}
        response = client.request(
            method,
            path.format(keyId=target.key_id),
            headers=caller.headers,
            json=body if path == "/keys" else None,
        )
        where = f"{method.upper()} {path} ({name})"
        if method == "get":  # reading is not acting, and never shows key material
            assert response.status_code == 200, where
            assert "key" not in response.json(), where
        else:
            assert response.status_code == 403, f"{where}: {response.text}"
            error = response.json()["error"]
            assert error["type"] == "forbidden", where
            assert variant.field in [f["field"] for f in error["fields"]], f"{where}: {error}"
        assert other_keys(api_engine, org_a.id, caller.key_id) == before, where
    # the target still works, untouched
    assert client.get("/news", headers=target.headers).status_code == 200


@pytest.mark.parametrize("name", VARIANTS)
def test_a_key_may_always_rotate_and_revoke_itself(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock, name: str
) -> None:
    caller, _ = weaker_and_stronger(api_engine, org_a, variants(clock.now)[name])
    rotated = client.post(f"/keys/{caller.key_id}/rotate", headers=caller.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert client.delete(f"/keys/{new['id']}", headers={"x-api-key": new["key"]}).status_code == 204


def test_a_key_acts_on_keys_it_dominates(
    client: TestClient, api_engine: Engine, org_a: Tenant, clock: FakeClock
) -> None:
    limits = {
        "expires_at": clock.now + timedelta(hours=2),
        "remaining": 100,
        "refill_amount": 10,
        "refill_interval_ms": MINUTE_MS,
        "rate_limit_max": 10,
        "rate_limit_window_ms": MINUTE_MS,
    }
    caller = another_key(api_engine, org_a, **limits)
    weaker = another_key(
        api_engine,
        org_a,
        permissions={"news": ["read"], "keys": ["read"]},
        expires_at=clock.now + timedelta(hours=1),
        remaining=50,
        refill_amount=5,
        refill_interval_ms=2 * MINUTE_MS,
        rate_limit_max=1,
        rate_limit_window_ms=MINUTE_MS,
    )
    client.get("/news", headers=weaker.headers)  # the weaker key has spent one request
    rotated = client.post(f"/keys/{weaker.key_id}/rotate", headers=caller.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["permissions"] == {"keys": ["read"], "news": ["read"]}
    assert (new["remaining"], new["refillAmount"], new["rateLimitMax"]) == (49, 5, 1)
    assert client.delete(f"/keys/{new['id']}", headers=caller.headers).status_code == 204
    assert client.get("/news", headers={"x-api-key": new["key"]}).status_code == 401
