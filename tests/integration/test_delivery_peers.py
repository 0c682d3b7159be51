"""Delivery to other real peers on 127.0.0.1: an aiosmtpd server receives the email
(row 53: 550 permanent, 451 retried), apprise's json:// reaches a local receiver
(row 14: refused when private and not allowlisted), the deliver actor runs on a real
dramatiq worker, and channel keys load or refuse to (row 56)."""

from __future__ import annotations

import json
import os
import stat
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import apprise
import dramatiq
import pytest

from core.config import Settings
from core.delivery.channels import KEY_FILE_NAME, load_keyring
from core.delivery.deliveries import SendContext
from core.delivery.send_apprise import plugin_host
from core.errors import ConfigError
from core.fetch import GuardPolicy, build_client
from tests.support.delivery import (  # noqa: F401  (the fixtures provide `world`, `smtp`)
    SMTPHandler,
    World,
    smtp_fixture,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Response
from workers.broker import DELIVER_QUEUE, build_broker
from workers.deliver import declare_deliver_actor, enqueue_deliveries


def email_config(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "newsmon@example.com",
        "to": ["reader@example.com", "boss@example.com"],
        "unsubscribeUrl": "https://newsmon.example/unsubscribe?c=1",
    }


def test_email_arrives_with_both_parts_headers_and_links(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    world.channel("email", email_config(port))
    world.stories(2)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "sent"
    [raw] = handler.messages
    message = message_from_bytes(raw, policy=default)
    assert message["Subject"] == "AI: 2 new stories"
    assert message["To"] == "reader@example.com, boss@example.com"
    assert message["List-Unsubscribe"] == "<https://newsmon.example/unsubscribe?c=1>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8"
    text, page = plain.get_content(), html.get_content()
    assert "Story <0> & co" in text and "https://news.example/" in text
    assert "Story &lt;0&gt; &amp; co" in page and 'href="https://news.example/' in page
    assert world.row(delivery_id).state == "sent"


@pytest.mark.parametrize(
    ("reply", "state"),
    [("550 5.1.1 mailbox unavailable", "failed"), ("451 4.3.0 try later", "pending")],
)
def test_smtp_550_is_permanent_and_451_is_retried(
    world: World, smtp: tuple[SMTPHandler, int], reply: str, state: str
) -> None:
    handler, port = smtp
    handler.rcpt_reply = reply
    world.channel("email", email_config(port))
    world.stories(1)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    row = world.row(delivery_id)
    assert row.state == state and row.lastStatusCode == int(reply[:3])
    assert (result.retry_at is not None) == (state == "pending")
    assert handler.messages == []


def test_apprise_json_reaches_a_local_receiver(world: World) -> None:
    with LocalHTTPServer(routes={"/notify": Response(body=b"{}")}) as server:
        world.channel("apprise", {"url": f"json://127.0.0.1:{server.port}/notify"})
        world.stories(2)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
        assert result.outcome is not None and result.outcome.kind == "sent", result.outcome
        [request] = server.requests
    body = json.loads(request.body)
    assert body["title"] == "AI: 2 new stories"
    assert "Story" in body["message"]
    assert world.row(delivery_id).state == "sent"


def test_apprise_failure_is_one_attempt_and_recorded(world: World) -> None:
    with LocalHTTPServer(routes={"/notify": Response(status=500)}) as server:
        world.channel("apprise", {"url": f"json://127.0.0.1:{server.port}/notify?retry=3"})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        assert server.hits["/notify"] == 1  # apprise's own retries are off
    row = world.row(delivery_id)
    assert row.state == "pending" and row.lastError


def test_apprise_private_target_is_refused_unless_allowlisted(world: World) -> None:
    strict = GuardPolicy()
    with LocalHTTPServer(routes={"/notify": Response()}) as server, build_client(strict) as client:
        world.channel("apprise", {"url": f"json://127.0.0.1:{server.port}/notify"})
        world.stories(1)
        [delivery_id] = world.plan()
        ctx = SendContext(keyring=world.keyring, client=client, policy=strict)
        result = world.deliver(delivery_id, ctx=ctx)
        assert server.total_hits == 0
    assert result.outcome is not None and result.outcome.permanent
    assert world.row(delivery_id).state == "failed"


def test_deliver_actor_on_a_worker_sends_once_despite_duplicate_messages(world: World) -> None:
    broker = build_broker(Settings())
    with LocalHTTPServer(routes={"/hook": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": "whsec_" + "a" * 44})
        world.stories(1)
        [delivery_id] = world.plan()
        declare_deliver_actor(broker, world.engine, lambda: world.ctx)
        worker = dramatiq.Worker(broker, worker_threads=4)
        worker.start()
        try:
            enqueue_deliveries(broker, [delivery_id] * 5)
            broker.join(DELIVER_QUEUE)
            worker.join()
        finally:
            worker.stop()
        assert server.hits["/hook"] == 1
    assert world.row(delivery_id).state == "sent"


def test_embedded_mode_generates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_keyring(settings)
    key_file = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert load_keyring(settings).kids == first.kids


def test_production_mode_without_a_key_refuses_with_one_line() -> None:
    env: dict[str, Any] = {
        "database_url": "postgresql://postgres@127.0.0.1/x",
        "broker_url": "redis://h:6379/0",
    }
    with pytest.raises(ConfigError, match=r"^NEWSMON_ENCRYPTION_KEYS: production mode"):
        Settings(**env)
    # Settings built around validation (as some tests do) still cannot load a keyring.
    with pytest.raises(ConfigError, match=r"^NEWSMON_ENCRYPTION_KEYS: production mode needs"):
        load_keyring(Settings.model_construct(**env))


def test_apprise_token_hosts_are_not_addresses_but_numeric_hosts_of_custom_targets_are() -> None:
    discord = apprise.Apprise.instantiate("discord://1234/abcdefTOKEN")
    assert plugin_host(discord) is None  # posts to discord.com whatever the id
    sneaky = apprise.Apprise.instantiate("json://2130706433:8080/x")  # 127.0.0.1
    assert plugin_host(sneaky) == ("2130706433", 8080)
