"""The `newsmon` command as a user runs it: a fresh directory, real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

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


def _head_revision(tmp_path: Path) -> str | None:
    return head_revision(make_engine(f"sqlite:///{tmp_path / 'scratch.db'}"))


def test_help_lists_every_command(tmp_path: Path):
    result = newsmon("--help", cwd=tmp_path)
    assert result.returncode == 0
    commands = ("run", "web", "scheduler", "worker", "db", "org", "member", "key", "search")
    for command in (*commands, "secrets", "delivery", "dlq"):
        assert command in result.stdout
    for group in ("db", "org", "key", "search"):
        assert newsmon(group, "--help", cwd=tmp_path).returncode == 0


def test_tenant_setup_from_the_shell(tmp_path: Path):
    upgraded = newsmon("db", "upgrade", cwd=tmp_path).stdout
    assert upgraded.strip() == f"database at revision {_head_revision(tmp_path)}"
    assert (tmp_path / "data" / "newsmon.db").exists()
    org = json.loads(newsmon("org", "create", "Acme Corp", cwd=tmp_path).stdout)
    assert org["slug"] == "acme-corp"
    owner = newsmon(
        "member",
        "add",
        "--org",
        "acme-corp",
        "--email",
        "Ada@acme.example",
        "--role",
        "owner",
        cwd=tmp_path,
    )
    assert owner.returncode == 0, owner.stderr
    assert json.loads(owner.stdout)["role"] == "owner"
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
        (
            ("member", "add", "--org", "none", "--email", "a@b.example"),
            {},
            "error: no organization with slug 'none'",
        ),
        (
            ("db", "upgrade"),
            {"NEWSMON_SMTP_URL": "smtp://relay.example"},
            "error: NEWSMON_MAIL_FROM:",
        ),
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


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        ((), {}, "error: Invalid value for --feed: give at least one feed"),
        (
            ("--feed", "http://127.0.0.1:9/feed.xml"),
            {},
            "error: searchQuery.sources.0.url: destination not allowed: 127.0.0.1 is loopback",
        ),
        (
            ("--feed", "https://example.com/a.xml", "--feed", "http://169.254.169.254/latest"),
            {},
            "error: searchQuery.sources.1.url: destination not allowed: 169.254.169.254 is "
            "cloud metadata",
        ),
        (
            ("--feed", "http://localhost:9/feed.xml"),
            {},
            "error: searchQuery.sources.0.url: destination not allowed: 127.0.0.1 is loopback "
            "(resolved from localhost)",
        ),
        (
            ("--feed", "http://10.1.2.3/feed.xml"),
            {"NEWSMON_FETCH_ALLOWLIST": "127.0.0.1"},
            "error: searchQuery.sources.0.url: destination not allowed: 10.1.2.3 is private",
        ),
        (
            ("--feed", "https://example.com/a.xml", "--tz", "Europe/Berlin"),
            {},
            "error: Invalid value for --tz: only applies to a schedule: add --cron",
        ),
        (
            ("--feed", "https://example.com/a.xml", "--catch-up", "all"),
            {},
            "error: Invalid value for --catch-up: only applies to a schedule: add --cron",
        ),
        (
            ("--name", "AI", "--feed", "https://example.com/other.xml"),
            {},
            "error: name: the organization already has a search named 'AI'",
        ),
    ],
)
def test_search_add_refuses_what_could_never_run_and_creates_nothing(
    tmp_path: Path, extra, env, message
):
    newsmon("org", "create", "Acme", cwd=tmp_path)
    first = newsmon(
        "search",
        "add",
        "--org",
        "acme",
        "--name",
        "AI",
        "--feed",
        "https://example.com/f.xml",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    args = ("--name", "n", *extra) if "--name" not in extra else extra
    result = newsmon("search", "add", "--org", "acme", *args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(message), result.stderr
    rows = _rows(tmp_path, "select count(*) from news")
    assert rows == 1


def test_fetch_allowlist_lets_search_add_watch_an_allowed_private_feed(tmp_path: Path):
    newsmon("org", "create", "Acme", cwd=tmp_path)
    result = newsmon(
        "search",
        "add",
        "--org",
        "acme",
        "--name",
        "intranet",
        "--feed",
        "http://127.0.0.1:9/feed.xml",
        cwd=tmp_path,
        env={"NEWSMON_FETCH_ALLOWLIST": "127.0.0.1"},
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "add"), "error: Missing option '--org'. (see `newsmon search add --help`)"),
        (
            ("search", "add", "--org", "a", "--name", "n", "--bogus"),
            "error: No such option: --bogus",
        ),
        (("org", "create"), "error: Missing argument 'name'. (see `newsmon org create --help`)"),
        (("nosuch",), "error: No such command 'nosuch'. (see `newsmon --help`)"),
        (
            ("key", "create", "--name", "k", "--org", "a", "--remaining", "-1"),
            "error: Invalid value for '--remaining':",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args, message):
    result = newsmon(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(message), result.stderr


def test_help_shows_flags_without_a_type_and_explains_every_key_option(tmp_path: Path):
    text = newsmon("key", "create", "--help", cwd=tmp_path).stdout
    assert "<bool>" not in text and "│" not in text
    for option in ("--expires-in-days DAYS", "--rate-limit-max N", "--rate-limit-window-s"):
        line = next(line for line in text.splitlines() if option in line)
        assert len(line.split(maxsplit=2)) == 3, line  # option, metavar, help text


def _rows(tmp_path: Path, sql: str) -> int:
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_web_binds_the_host_and_port_given_on_the_command_line(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env["NEWSMON_WEB_PORT"] = "1"  # the option wins over the setting
    process = subprocess.Popen(
        [*NEWSMON, "web", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "web did not start"
                time.sleep(0.2)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=30)
