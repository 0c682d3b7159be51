"""Two test runs on one machine never share a Redis database index."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, require_service

#: A process that claims an index as a test run does, prints it, and holds it until its
#: standard input closes.
CLAIMANT = (
    "import sys; from tests.support import services; "
    "print(services.REDIS_TEST_DB, flush=True); sys.stdin.read()"
)


def _claimant(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIMANT],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


@pytest.fixture
def env_without_override() -> dict[str, str]:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return {k: v for k, v in os.environ.items() if k != "NEWSMON_TEST_REDIS_DB"}


def test_concurrent_runs_each_claim_their_own_index(env_without_override: dict[str, str]):
    first, a = _claimant(env_without_override)
    second, b = _claimant(env_without_override)
    try:
        assert a != b
        assert REDIS_TEST_DB not in (a, b)  # this run holds its own (or its override)
        assert 0 not in (a, b)
    finally:
        for process in (first, second):
            process.communicate(timeout=10)
    # The claims end with their processes: the index is free again.
    third, c = _claimant(env_without_override)
    third.communicate(timeout=10)
    assert c <= min(a, b)


def test_an_index_named_by_override_is_avoided_by_runs_that_choose(
    env_without_override: dict[str, str],
):
    probe, lowest_free = _claimant(env_without_override)
    probe.communicate(timeout=10)
    holder, held = _claimant({**env_without_override, "NEWSMON_TEST_REDIS_DB": str(lowest_free)})
    try:
        assert held == lowest_free
        chooser, chosen = _claimant(env_without_override)
        chooser.communicate(timeout=10)
        assert chosen != held
    finally:
        holder.communicate(timeout=10)


def test_each_xdist_worker_claims_its_own_index_not_its_controllers(
    env_without_override: dict[str, str],
):
    controller, held = _claimant(env_without_override)
    inherited = {**env_without_override, "NEWSMON_TEST_REDIS_DB": str(held)}
    try:
        workers = [_claimant({**inherited, "PYTEST_XDIST_WORKER": name}) for name in ("gw0", "gw1")]
        try:
            indexes = {held, *(index for _, index in workers)}
            assert len(indexes) == 3
        finally:
            for process, _ in workers:
                process.communicate(timeout=10)
    finally:
        controller.communicate(timeout=10)
