"""The `newsmon` command as a user runs it: a fresh directory, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.db.migrate import head_revision
from core.db.session import make_engine

NEWSMON = [sys.executable, "-c", "from cli.main import main; main()"]


def newsmon(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    full_env.update(env or {})
    return subprocess.run(
        [*NEWSMON, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_every_command(tmp_path: Path):
    result = newsmon("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "web", "scheduler", "worker", "db", "org", "key", "search"):
        assert command in result.stdout
    for group in ("db", "org", "key", "search"):
        assert newsmon(group, "--help", cwd=tmp_path).returncode == 0


def test_tenant_setup_from_the_shell(tmp_path: Path):
    head = head_revision(make_engine("sqlite://"))  # the newest migration, whichever it is
    assert f"revision {head}" in newsmon("db", "upgrade", cwd=tmp_path).stdout
    assert (tmp_path / "data" / "newsmon.db").exists()
    org = json.loads(newsmon("org", "create", "Acme Corp", cwd=tmp_path).stdout)
    assert org["slug"] == "acme-corp"
    created = newsmon("key", "create", "--org", "acme-corp", "--name", "ci", cwd=tmp_path)
    key = json.loads(created.stdout)
    assert key["key"].startswith("nm_") and "shown only once" in created.stderr
    search = newsmon(
        "search",
        "add",
        "--org",
        "acme-corp",
        "--name",
        "AI",
        "--feed",
        "https://example.com/feed.xml",
        "--query",
        '"open source" AND ai',
        "--cron",
        "0 9 * * 0",
        "--tz",
        "Europe/Berlin",
        cwd=tmp_path,
    )
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)["schedule"]["nextRun"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("db", "upgrade"),
            {"NEWSMON_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"},
            "error: NEWSMON_DATABASE_URL: cannot connect",
        ),
        (
            ("db", "upgrade"),
            {"NEWSMON_DATABASE_URL": "http://x"},
            "error: NEWSMON_DATABASE_URL: unsupported database",
        ),
        (("db", "upgrade"), {"NEWSMON_LOG_LEVEL": "chatty"}, "error: NEWSMON_LOG_LEVEL:"),
        (("worker",), {}, "error: NEWSMON_BROKER_URL:"),
        (("org", "create", "X", "--slug", "Bad Slug!"), {}, "error: slug:"),
        (
            ("search", "add", "--org", "none", "--name", "n", "--feed", "http://x/"),
            {},
            "error: no organization with slug 'none'",
        ),
        (("key", "create", "--name", "k"), {}, "error: --org/--operator:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args, env, message):
    result = newsmon(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_search_with_bad_feed_or_query_changes_nothing(tmp_path: Path):
    newsmon("org", "create", "Acme", cwd=tmp_path)
    for extra in (("--feed", "file:///etc/passwd"), ("--feed", "http://x/", "--query", "(a OR")):
        result = newsmon("search", "add", "--org", "acme", "--name", "n", *extra, cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith("error: searchQuery.")
