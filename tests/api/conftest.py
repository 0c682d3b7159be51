"""Fixtures of the API tests: an app on a real database, two organizations, their keys."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.clock import utcnow
from core.config import Settings
from core.db.session import unit_of_work
from core.delivery.deliveries import SendContext
from core.fetch import GuardPolicy, build_client
from core.keys import RESOURCE_ACTIONS
from core.secrets import Keyring, generate_key_string, parse_keys
from core.tenancy.api_keys import create_api_key, create_operator_key
from tests.support import factories

#: Every permission there is, for keys that should pass every check.
ALL_PERMISSIONS = {resource: sorted(actions) for resource, actions in RESOURCE_ACTIONS.items()}


class FakeClock:
    """A settable clock for quotas and rate limits."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Tenant:
    id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}


def make_tenant(engine: Engine, slug: str, **key_fields: object) -> Tenant:
    with unit_of_work(engine) as session:
        organization = factories.org(session, slug)
        key_fields.setdefault("permissions", ALL_PERMISSIONS)
        issued = create_api_key(session, organization.id, name=f"{slug} key", **key_fields)  # type: ignore[arg-type]
        return Tenant(id=organization.id, key=issued.key, key_id=issued.id)


def add_key(engine: Engine, tenant: Tenant, **key_fields: object) -> str:
    return another_key(engine, tenant, **key_fields).key


def another_key(engine: Engine, tenant: Tenant, **key_fields: object) -> Tenant:
    """One more key of ``tenant``'s organization (every permission unless given)."""
    with unit_of_work(engine) as session:
        key_fields.setdefault("permissions", ALL_PERMISSIONS)
        issued = create_api_key(session, tenant.id, name="extra", **key_fields)  # type: ignore[arg-type]
        return Tenant(id=tenant.id, key=issued.key, key_id=issued.id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api_engine(db_engine: Engine) -> Engine:
    return db_engine


#: Address policy of channel sends in API tests: loopback allowed (local receivers).
LOOPBACK_POLICY = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=5.0)


@pytest.fixture
def keyring() -> Keyring:
    return parse_keys(generate_key_string())


@pytest.fixture
def client(
    api_engine: Engine, clock: FakeClock, keyring: Keyring, tmp_path: Path
) -> Iterator[TestClient]:
    app = create_app(Settings(), api_engine, clock=clock)
    # channel sends: a fresh keyring (no key file written), strict policy except loopback,
    # file channels below the test's own folder
    app.state.send_context = SendContext(
        keyring=keyring,
        client=build_client(LOOPBACK_POLICY),
        policy=LOOPBACK_POLICY,
        file_root=tmp_path / "digests",
    )
    # feeds checked at create: names resolve to a public address (DNS is the outside
    # edge), address literals to themselves
    app.state.fetch_resolver = public_dns
    with TestClient(app, client=(CLIENT_ADDRESS, 50000)) as test_client:
        yield test_client


#: The address the API's test client calls from (TEST-NET-2), as the audit log shows it.
CLIENT_ADDRESS = "198.51.100.7"
#: Where :func:`public_dns` points every name (a public address, TEST-NET excluded).
PUBLIC_ADDRESS = "93.184.215.14"


def public_dns(host: str, _port: int) -> list[str]:
    """A resolver for the API's feed checks: an address literal is itself, a name public."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return [PUBLIC_ADDRESS]


@pytest.fixture
def org_a(api_engine: Engine) -> Tenant:
    return make_tenant(api_engine, "org-a")


@pytest.fixture
def org_b(api_engine: Engine) -> Tenant:
    return make_tenant(api_engine, "org-b")


@pytest.fixture
def operator_key(api_engine: Engine) -> str:
    with unit_of_work(api_engine) as session:
        return create_operator_key(session, name="ops").key
