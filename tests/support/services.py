"""Reaching the machine's real PostgreSQL and Redis from the tests.

Where ``CI=true`` an unreachable service fails the test; elsewhere it skips with one line.

Each test run has a Redis database index of its own (:data:`REDIS_TEST_DB`), so two runs
on one machine never flush each other's keys: ``NEWSMON_TEST_REDIS_DB`` names one, else
the run claims the lowest free index from 1 up. A claim is a connection the run keeps open
under the client name ``newsmon-test-db-<index>`` (``CLIENT SETNAME``): it survives the
``FLUSHDB`` of the tests, and it ends with the process however that ends, so no lock is
ever left behind. When two runs name themselves for the same index at once, the older
connection (lower client id) keeps it and the other moves on. The chosen index is put in
``NEWSMON_TEST_REDIS_DB``, so processes the tests start use the same one (the end-to-end
tests also pass it in ``NEWSMON_BROKER_URL``). Under pytest-xdist each worker process is a
run of its own (its own index and PostgreSQL database).
"""

from __future__ import annotations

import os
import socket

import pytest
import redis

#: The machine's PostgreSQL server (trust auth, user postgres), overridable for odd setups.
PG_ADMIN_URL = os.environ.get(
    "NEWSMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The machine's Redis; each run uses a database index of its own and flushes it.
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
#: Environment variable naming the run's Redis database index (set when one is claimed).
REDIS_DB_ENV = "NEWSMON_TEST_REDIS_DB"
#: Set by pytest-xdist in each of its worker processes.
XDIST_WORKER_ENV = "PYTEST_XDIST_WORKER"
#: Index used when Redis is unreachable (the Redis tests then skip, or fail in CI).
FALLBACK_REDIS_DB = 9
#: Client name prefix of the connection that holds a run's index.
CLAIM_NAME = "newsmon-test-db-"
#: The claiming connection, kept open for the whole run.
_claim: redis.Redis | None = None


def claim_redis_db(host: str = REDIS_HOST, port: int = REDIS_PORT) -> int:
    """The run's Redis database index: ``NEWSMON_TEST_REDIS_DB`` (registered, so runs
    that choose their own avoid it) or the lowest index no live run holds. Each
    pytest-xdist worker claims one of its own: the index it inherits is its controller's."""
    global _claim  # noqa: PLW0603 (one claim per process)
    override = None if os.environ.get(XDIST_WORKER_ENV) else os.environ.get(REDIS_DB_ENV)
    try:
        client = redis.Redis(host=host, port=port, single_connection_client=True)
        my_id = int(client.client_id())
        if override is not None:
            client.client_setname(f"{CLAIM_NAME}{int(override)}")
            _claim = client
            return int(override)
        databases = int(str(client.config_get("databases")["databases"]))
        for index in range(1, databases):
            name = f"{CLAIM_NAME}{index}"
            holders = [int(c["id"]) for c in client.client_list() if c.get("name") == name]
            if holders:
                continue
            client.client_setname(name)
            holders = [int(c["id"]) for c in client.client_list() if c.get("name") == name]
            if min(holders) == my_id:
                _claim = client
                os.environ[REDIS_DB_ENV] = str(index)
                return index
        client.close()
        raise RuntimeError(f"every Redis database index 1..{databases - 1} is held by a run")
    except redis.RedisError:
        return int(override) if override is not None else FALLBACK_REDIS_DB


REDIS_TEST_DB = claim_redis_db()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when ``host:port`` does not accept connections."""
    if port_open(host, port):
        return
    message = f"{name} not reachable at {host}:{port}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)
