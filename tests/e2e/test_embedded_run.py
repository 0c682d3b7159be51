"""`newsmon run` as a newcomer starts it: SQLite, no Redis, one process doing everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.http_server import LocalHTTPServer

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
NEWSMON = [sys.executable, "-c", "from cli.main import main; main()"]
#: Seconds the embedded system gets to fire, fetch and store.
WAIT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_embedded_run_fires_a_schedule_fetches_and_stops_cleanly(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= {
        "NEWSMON_SCHEDULER_TICK_SECONDS": "0.3",
        "NEWSMON_FETCH_ALLOWLIST": "127.0.0.1",
        "NEWSMON_WEB_PORT": str(port),
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [*NEWSMON, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    with LocalHTTPServer(directory=FEEDS) as feeds:
        cli("org", "create", "Acme")
        key = json.loads(cli("key", "create", "--org", "acme", "--name", "e2e"))["key"]
        added = json.loads(
            cli(
                "search",
                "add",
                "--org",
                "acme",
                "--name",
                "All",
                "--feed",
                feeds.url_for("/rsparser-ranchero-manton.rss"),
                "--cron",
                "0 0 1 1 *",
            )
        )
        db = sqlite3.connect(tmp_path / "data" / "newsmon.db")
        due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        db.execute(
            'UPDATE schedules SET "nextRun" = ? WHERE id = ?', (due, added["schedule"]["id"])
        )
        db.commit()

        proc = subprocess.Popen(
            [*NEWSMON, "run"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            health = wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz"))
            assert health == {"status": "ok"}
            ready = _get(f"http://127.0.0.1:{port}/readyz")
            assert ready and ready["status"] == "ready"
            state = wait_for(
                lambda: db.execute(
                    "SELECT state FROM runs WHERE state IN ('succeeded', 'failed')"
                ).fetchone()
            )
            assert state == ("succeeded",)
            assert db.execute("SELECT count(*) FROM stories").fetchone()[0] > 0
            assert feeds.hits["/rsparser-ranchero-manton.rss"] == 1
            # "Run now" through the API reaches this process's in-process worker.
            queued = _post(f"http://127.0.0.1:{port}/news/{added['id']}/run", key)
            assert queued["runId"]
            # That run, by its id: the source's first fetch may also start one of its own.
            done = wait_for(
                lambda: db.execute(
                    "SELECT state FROM runs WHERE id = ? AND state IN ('succeeded', 'failed')",
                    (queued["runId"],),
                ).fetchone()
            )
            assert done == ("succeeded",)
        finally:
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output
        assert "newsmon stopped" in output
        assert "Traceback" not in output, output
        schedule = db.execute('SELECT "lastSuccess", "nextRun" FROM schedules').fetchone()
        assert schedule[0] is not None and schedule[1] > due
        db.close()


def _post(url: str, key: str):
    request = urllib.request.Request(url, method="POST", headers={"x-api-key": key})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None
