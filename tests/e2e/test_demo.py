"""`newsmon demo` as a newcomer runs it: stories found and delivered within a minute."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.delivery import free_port

NEWSMON = [sys.executable, "-c", "from cli.main import main; main()"]
#: Seconds the demo gets to fetch, dedupe, score and deliver its first digest.
WAIT_S = 60


@pytest.mark.slow
def test_demo_delivers_a_digest_to_its_file_channel_and_webhook_receiver(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env |= {"NEWSMON_WEB_PORT": str(free_port()), "PYTHONPATH": str(ROOT)}
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*NEWSMON, "demo"], cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        root = tmp_path / "data" / "digests"  # <root>/<organizationId>/demo/
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            text = log.read_text()
            if any(root.glob("*/demo/*.md")) and "demo receiver: webhook" in text:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"no digest within {WAIT_S} s:\n{log.read_text()[-3000:]}")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    digest = next(root.glob("*/demo/*.md")).read_text()
    assert digest.startswith("# Demo news: ")
    assert "signed yes" in log.read_text()
    assert proc.returncode == 0, log.read_text()[-3000:]
