"""`newsmon health scheduler|worker`: the container liveness check reads the heartbeat
the real processes write, and a stuck (stopped) process turns unhealthy."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from core.clock import utcnow
from core.ops.heartbeat import beat, heartbeat_path
from tests.e2e import test_processes
from tests.e2e.test_processes import Processes, wait_for

# The real processes' fixtures (a database of their own, a Redis namespace).
engine = test_processes.engine
procs = test_processes.procs

NEWSMON = [sys.executable, "-c", "from cli.main import main; main()"]


def health(
    kind: str, cwd: Path, env: dict[str, str] | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    return subprocess.run(
        [*NEWSMON, "health", kind, *extra],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("kind", ["scheduler", "worker"])
def test_fresh_heartbeat_is_healthy_stale_or_missing_is_not(tmp_path: Path, kind: str):
    missing = health(kind, tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"{kind}: no heartbeat"), missing.stderr

    path = heartbeat_path(tmp_path / "data", kind)
    beat(path, utcnow() - timedelta(seconds=5))
    fresh = health(kind, tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith(f"{kind}: alive: last heartbeat "), fresh.stdout

    beat(path, utcnow() - timedelta(minutes=10))
    stale = health(kind, tmp_path)
    assert stale.returncode == 1
    assert re.match(rf"{kind}: stuck: last heartbeat 6\d\d s ago \(limit \d+ s\)", stale.stderr)

    beat(path, utcnow() - timedelta(seconds=30))
    assert health(kind, tmp_path, None, "--max-age", "10").returncode == 1
    assert health(kind, tmp_path, None, "--max-age", "60").returncode == 0
    # NEWSMON_DATA_DIR moves the heartbeat with the rest of the data
    assert health(kind, tmp_path, {"NEWSMON_DATA_DIR": str(tmp_path / "elsewhere")}).returncode == 1


@pytest.mark.slow
def test_running_scheduler_and_worker_beat_and_a_stopped_one_turns_unhealthy(
    procs: Processes, tmp_path: Path
):
    started = {kind: procs.start(kind) for kind in ("scheduler", "worker")}
    env = {k: v for k, v in procs.env.items() if k.startswith("NEWSMON_")}

    def healthy(kind: str) -> bool:
        return health(kind, tmp_path, env).returncode == 0

    for kind in started:
        wait_for(partial(healthy, kind), f"{kind} healthy")
    stuck = started["scheduler"]
    os.kill(stuck.pid, signal.SIGSTOP)  # alive but doing nothing
    try:
        wait_for(
            lambda: health("scheduler", tmp_path, env, "--max-age", "2").returncode == 1,
            "stopped scheduler reported unhealthy",
        )
        assert health("worker", tmp_path, env, "--max-age", "30").returncode == 0
    finally:
        os.kill(stuck.pid, signal.SIGCONT)
