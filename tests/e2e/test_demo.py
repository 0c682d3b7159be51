"""The README's quick start on a fresh copy of the repository: `make run` starts the
demo, and within about a minute and a half it shows what newsmon is for."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cli.demo import DEMO_EXCLUDED, set_up_demo, start_demo_server
from core.config import Settings
from core.db.session import unit_of_work
from core.tenancy.api_keys import create_api_key
from tests.conftest import ROOT
from tests.support.delivery import free_port

#: Seconds the demo gets to show everything below (the README promises about a minute).
WAIT_S = 150


def _digests(root: Path) -> list[str]:
    return [p.read_text() for p in sorted(root.glob("*/demo/*.md"))]


def _filtered(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT title, explanation FROM stories WHERE isFiltered"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []
    return [(title, explanation) for title, explanation in rows]


def _shown(root: Path, db: Path, log: str) -> bool:
    digests = _digests(root)
    return (
        len(digests) >= 3
        and any("Also reported by" in d for d in digests)
        and any(DEMO_EXCLUDED[0] in title.lower() for title, _ in _filtered(db))
        and "demo receiver: webhook" in log
    )


@pytest.mark.slow
def test_quick_start_on_a_fresh_clone_shows_the_product(tmp_path: Path) -> None:
    clone = tmp_path / "newsmon"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The clone uses this checkout's installed environment (installing takes minutes):
    # make is told the install step is done, and the clone's code comes first on the path.
    (clone / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= {"NEWSMON_WEB_PORT": str(free_port()), "PYTHONPATH": str(clone)}
    log_path = tmp_path / "make-run.log"
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            ["make", "-o", ".venv/.installed-stamp", "run"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    root, db = clone / "data" / "digests", clone / "data" / "newsmon.db"
    try:
        deadline = time.monotonic() + WAIT_S
        while not _shown(root, db, log_path.read_text()):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"demo incomplete:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    log = log_path.read_text()
    digests = _digests(root)
    assert all(d.startswith("# Demo news\n") for d in digests)
    # The one-line explanation under every story.
    items = [re.findall(r"^- \*\*.*?(?=^- |^---)", d, re.M | re.S) for d in digests]
    assert all(len(its) == d.count("Why: ") and its for its, d in zip(items, digests, strict=True))
    # Quiet hours at the start: the first digests hold only the urgent "Breaking" story.
    first = digests[0]
    assert "**1 new story**" in first and "Breaking" in first and "**URGENT**" in first, first
    # A wire copy is delivered once, with the other outlets under "also reported by".
    story = next(item for its in items for item in its if "Also reported by" in item)
    wire = re.search(r"/wire-(\d+)", story)
    assert wire is not None, story
    assert sum(f"/wire-{wire.group(1)}" in item for its in items for item in its) == 1, items
    # The filtered story with its reason.
    filtered = _filtered(db)
    assert any(
        DEMO_EXCLUDED[0] in title.lower() and DEMO_EXCLUDED[0] in json.dumps(explanation)
        for title, explanation in filtered
    ), filtered
    assert "signed yes" in log and "signed NO" not in log
    assert "re-enqueued" not in log  # a fresh clone has nothing from a last session
    assert "'candidates': 0, 'digestsNew': 0" not in log  # no run before the first news
    assert proc.returncode in (0, 2, -signal.SIGINT), log[-3000:]


def test_demo_keeps_its_organization_and_keys_across_runs(sqlite_engine, tmp_path: Path):
    settings = Settings(data_dir=tmp_path)
    server = start_demo_server()
    try:
        first = set_up_demo(settings, sqlite_engine, server.base)
        with unit_of_work(sqlite_engine) as session:
            key = create_api_key(session, first, name="mine", permissions={"news": ["read"]})
        second = set_up_demo(settings, sqlite_engine, server.base)
    finally:
        server.shutdown()
    assert second == first
    with sqlite_engine.connect() as conn:
        keys = conn.exec_driver_sql('SELECT id FROM apikeys WHERE "organizationId" = ?', (first,))
        assert [row[0] for row in keys] == [key.id]
        searches = conn.exec_driver_sql(
            'SELECT count(*) FROM news WHERE "organizationId" = ?', (first,)
        )
        assert searches.scalar_one() == 1
