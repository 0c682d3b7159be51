"""``newsmon secrets`` as an operator runs it: a new key, then the reseal of a rotation."""

from __future__ import annotations

import json
from pathlib import Path

from core.db.session import make_engine, unit_of_work
from core.delivery import channels as ch
from core.secrets import Keyring, generate_key_string
from tests.e2e.test_cli import newsmon
from tests.support import factories

TOKEN = "lowercaseslacktoken"


def add_slack_channel(data_dir: Path, ring: Keyring, slug: str) -> str:
    engine = make_engine(f"sqlite:///{data_dir / 'newsmon.db'}")
    try:
        with unit_of_work(engine) as session:
            channel = factories.channel(session, factories.org(session, slug), "slack")
            valid = ch.validate_config(
                "slack", {"url": f"https://hooks.slack.com/services/T0/B0/{TOKEN}"}
            )
            channel.config = ch.seal_config(
                "slack", valid, ring, channel.organizationId, channel.id
            )
            return channel.id
    finally:
        engine.dispose()


def test_generate_key_prints_a_key_the_keyring_accepts(tmp_path: Path) -> None:
    result = newsmon("secrets", "generate-key", cwd=tmp_path)
    assert result.returncode == 0
    key = result.stdout.strip()
    assert Keyring([key]).kids and "NEWSMON_ENCRYPTION_KEYS" in result.stderr
    assert newsmon("secrets", "generate-key", cwd=tmp_path).stdout.strip() != key


def test_reseal_reports_counts_and_refuses_seals_no_key_opens(tmp_path: Path) -> None:
    old, new = generate_key_string(), generate_key_string()
    assert newsmon("db", "upgrade", cwd=tmp_path).returncode == 0
    resealed_id = add_slack_channel(tmp_path / "data", Keyring([old]), "acme")

    overlap = {"NEWSMON_ENCRYPTION_KEYS": f"{new},{old}"}
    first = newsmon("secrets", "reseal", cwd=tmp_path, env=overlap)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {
        "key": Keyring([new]).newest_kid,
        "resealed": 1,
        "alreadyCurrent": 0,
        "failed": [],
    }
    again = json.loads(newsmon("secrets", "reseal", cwd=tmp_path, env=overlap).stdout)
    assert (again["resealed"], again["alreadyCurrent"]) == (0, 1)

    lost_id = add_slack_channel(tmp_path / "data", Keyring([generate_key_string()]), "other")
    refused = newsmon("secrets", "reseal", cwd=tmp_path, env={"NEWSMON_ENCRYPTION_KEYS": new})
    assert refused.returncode == 2
    report = json.loads(refused.stdout)
    assert report["failed"] == [{"channelId": lost_id, "reason": report["failed"][0]["reason"]}]
    assert "not configured" in report["failed"][0]["reason"]
    assert refused.stderr.strip().splitlines()[-1].startswith("error: 1 channel(s)")
    assert lost_id in refused.stderr and resealed_id not in refused.stderr
    for output in (first, refused):
        assert TOKEN not in output.stdout + output.stderr
        assert old not in output.stdout + output.stderr and new not in output.stdout + output.stderr
