"""`newsmon channel add|list|test` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.e2e.test_cli import newsmon
from tests.support.http_server import LocalHTTPServer, Response


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of the commands: the embedded SQLite file, or the test run's
    PostgreSQL database (emptied after the test); loopback targets allowlisted."""
    env = {"NEWSMON_FETCH_ALLOWLIST": "127.0.0.1"}
    if request.param == "postgresql":
        request.getfixturevalue("pg_engine")
        env["NEWSMON_DATABASE_URL"] = request.getfixturevalue("pg_url")
    else:
        assert newsmon("db", "upgrade", cwd=tmp_path).returncode == 0
    created = newsmon("org", "create", "Acme", cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    return env


def test_a_webhook_channel_set_up_listed_and_tested_from_the_shell(
    tmp_path: Path, env: dict[str, str]
) -> None:
    feed = "https://news.example/feed.xml"  # a search needs a feed; never fetched here
    search = newsmon(
        "search", "add", "--org", "acme", "--name", "AI", "--feed", feed, cwd=tmp_path, env=env
    )
    assert search.returncode == 0, search.stderr
    news_id = json.loads(search.stdout)["id"]
    with LocalHTTPServer(routes={"/hook": Response(status=204)}) as receiver:
        added = newsmon(
            "channel",
            "add",
            "--org",
            "acme",
            "--type",
            "webhook",
            "--name",
            "Ops hook",
            "--url",
            receiver.url_for("/hook") + "?token=s3cr3t-value",
            "--search",
            news_id,
            cwd=tmp_path,
            env=env,
        )
        assert added.returncode == 0, added.stderr
        channel = json.loads(added.stdout)
        assert channel["type"] == "webhook" and channel["searches"] == [news_id]
        assert "s3cr3t-value" not in added.stdout  # the URL is shown masked
        secret = added.stderr.split("shown only once): ")[1].strip()
        assert secret.startswith("whsec_")

        listed = newsmon("channel", "list", "--org", "acme", cwd=tmp_path, env=env)
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [(r["id"], r["name"], r["searches"]) for r in rows] == [
            (channel["id"], "Ops hook", [news_id])
        ]
        assert "s3cr3t-value" not in listed.stdout and secret not in listed.stdout

        tested = newsmon("channel", "test", "--org", "acme", channel["id"], cwd=tmp_path, env=env)
        assert tested.returncode == 0, tested.stderr
        assert json.loads(tested.stdout)["kind"] == "sent"
        assert receiver.hits["/hook"] == 1
        request = receiver.requests[0]
        Webhook(secret).verify(request.body, request.headers)  # signed with the shown secret


def test_bad_channels_are_refused_with_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    cases = [
        (("--type", "webhook", "--url", "http://10.0.0.1/hook"), "error: config.url:"),
        (("--type", "slack", "--url", "ftp://x.example/"), "error: config.url:"),
        (("--type", "email", "--host", "smtp.example"), "error: config.from:"),
        (("--type", "slack", "--url", "https://x.example", "--host", "h"), "--host not used"),
        (
            (
                "--type",
                "pigeon",
            ),
            "error: type:",
        ),
    ]
    for args, message in cases:
        result = newsmon("channel", "add", "--org", "acme", *args, cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
    listed = newsmon("channel", "list", "--org", "acme", cwd=tmp_path, env=env)
    assert listed.stdout == ""  # nothing was stored
    missing = newsmon("channel", "test", "--org", "acme", "nope", cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_a_file_channel_test_writes_the_sample_digest(tmp_path: Path, env: dict[str, str]) -> None:
    added = newsmon(
        "channel",
        "add",
        "--org",
        "acme",
        "--type",
        "file",
        "--directory",
        "digests",
        "--format",
        "markdown",
        cwd=tmp_path,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    channel = json.loads(added.stdout)
    assert channel["config"]["formats"] == ["markdown"]
    tested = newsmon("channel", "test", "--org", "acme", channel["id"], cwd=tmp_path, env=env)
    assert tested.returncode == 0, tested.stderr
    written = list((tmp_path / "data").rglob("*.md"))
    assert len(written) == 1
