"""API requests counted in memory and added to ``usage`` in batches, on SQLite and
PostgreSQL: several web processes add into the same rows, a refused flush loses nothing,
and a web app writes what it counted when it stops."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.app import create_app
from core.config import Settings
from core.db.session import make_engine
from core.usage.meter import RequestMeter
from core.usage.report import usage_months
from tests.api.conftest import FakeClock, make_tenant

NOVEMBER = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)


def _requests(engine: Engine, organization_id: str, *months: str) -> list[int]:
    with Session(engine) as s:
        return [m.apiRequests for m in usage_months(s, organization_id, list(months))]


def test_two_processes_add_their_counts_into_each_month(db_engine: Engine) -> None:
    tenant = make_tenant(db_engine, "acme")
    web_1, web_2 = RequestMeter(), RequestMeter()
    for _ in range(3):
        web_1.count(tenant.id, NOVEMBER)
    web_1.count(tenant.id, DECEMBER)
    web_2.count(tenant.id, DECEMBER)
    assert web_1.flush(db_engine, DECEMBER) == 4
    assert web_2.flush(db_engine, DECEMBER) == 1
    assert web_1.flush(db_engine, DECEMBER) == 0  # nothing twice
    assert _requests(db_engine, tenant.id, "2026-11", "2026-12") == [3, 2]


def test_a_refused_flush_keeps_its_counts_for_the_next(db_engine: Engine) -> None:
    tenant = make_tenant(db_engine, "acme")
    meter = RequestMeter()
    meter.count(tenant.id, DECEMBER)
    meter.count(tenant.id, DECEMBER)
    unreachable = make_engine("postgresql://postgres@127.0.0.1:1/newsmon")
    try:
        with pytest.raises(OperationalError):
            meter.flush(unreachable, DECEMBER)
    finally:
        unreachable.dispose()
    assert meter.pending() == 2
    assert meter.flush(db_engine, DECEMBER) == 2
    assert _requests(db_engine, tenant.id, "2026-12") == [2]


def test_the_web_app_writes_its_counts_when_it_stops(db_engine: Engine) -> None:
    tenant = make_tenant(db_engine, "acme")
    clock = FakeClock()
    clock.now = DECEMBER
    # A flush interval longer than the test: only the stop writes.
    app = create_app(Settings(usage_flush_seconds=3600), db_engine, clock=clock)
    with TestClient(app) as client:
        for _ in range(4):
            assert client.get("/news", headers=tenant.headers).status_code == 200
        assert _requests(db_engine, tenant.id, "2026-12") == [0]
    assert _requests(db_engine, tenant.id, "2026-12") == [4]
