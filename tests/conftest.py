"""Fixtures shared by every suite: settings isolation, real PostgreSQL, SQLite, Redis."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from core.config import get_settings
from core.db.session import get_engine, make_engine
from tests.support.databases import (
    fresh_pg_database,
    migrated_sqlite_template,
    sqlite_copy,
    truncate_all,
)
from tests.support.http_server import LocalHTTPServer
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, require_service

#: The project's root, for tests that run the CLI or read fixtures.
ROOT = Path(__file__).resolve().parents[1]
#: ../shared next to the project: present on developer machines and in CI.
SHARED = ROOT.parent / "shared"
#: Where the tripwire lets tests connect.
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
#: Real-world feeds copied from the shared corpus, with provenance in MANIFEST.tsv.
FEED_FIXTURES = ROOT / "tests" / "fixtures" / "feeds"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No NEWSMON_* variable of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("NEWSMON_") and not key.startswith("NEWSMON_TEST_"):
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of its own for this test run, dropped after."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def _pg_session_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(_pg_session_engine: Engine) -> Iterator[Engine]:
    """The run's PostgreSQL database, emptied after each test."""
    yield _pg_session_engine
    truncate_all(_pg_session_engine)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of this test's own."""
    return sqlite_copy(_sqlite_template, tmp_path)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """Each test using this runs twice: on SQLite (embedded) and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis, on this run's own database index, flushed around each test."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def feed_server() -> Iterator[LocalHTTPServer]:
    """A local HTTP server on 127.0.0.1 serving ``tests/fixtures/feeds``; tests add
    scripted routes with ``feed_server.routes[path] = Response(...)`` or a handler."""
    with LocalHTTPServer(directory=FEED_FIXTURES) as server:
        yield server


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Opt-in: record every connect; refuse any outside loopback (no test leaves the machine).

    Returns the list of connect targets, so "zero connect attempts" is checkable. A module
    turns it on for all its tests with an autouse fixture that requests ``tripwire``.
    """
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: object) -> None:
        if not isinstance(address, tuple):
            return  # unix socket
        host = str(address[0]).split("%")[0]
        attempts.append(host)
        if not any(ipaddress.ip_address(host) in net for net in LOOPBACK):
            raise OSError(f"tripwire: connect to {host} outside loopback")

    def connect(self: socket.socket, address: object) -> None:
        check(address)
        real_connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        check(address)
        return real_connect_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts
