"""Reaching the machine's real PostgreSQL and Redis from the tests.

Where ``CI=true`` an unreachable service fails the test; elsewhere it skips with one line.
"""

from __future__ import annotations

import os
import socket

import pytest

#: The machine's PostgreSQL server (trust auth, user postgres), overridable for odd setups.
PG_ADMIN_URL = os.environ.get(
    "NEWSMON_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: The machine's Redis; the suite uses its own database index and flushes it.
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_TEST_DB = int(os.environ.get("NEWSMON_TEST_REDIS_DB", "9"))


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
