"""Digests as sent through the real deliver path: with a public address each email
recipient gets a message of their own (their own one-click unsubscribe, only their
address in ``To``); outlets are named by their feed, times shown in the channel's zone."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import update

from core.db.models import Entry, Source, Story
from core.db.session import unit_of_work
from core.delivery.digest_links import LINK_KEY_PURPOSE, DigestLinks
from core.ids import new_id
from tests.integration.test_delivery_peers import email_config
from tests.support.delivery import (  # noqa: F401  (the fixtures provide `world`, `smtp`)
    SMTPHandler,
    World,
    smtp_fixture,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Response


def with_links(world: World) -> DigestLinks:
    links = DigestLinks("https://newsmon.example", world.keyring.derive(LINK_KEY_PURPOSE))
    world.ctx = dataclasses.replace(world.ctx, links=links)
    return links


def test_each_recipient_gets_their_own_one_click_unsubscribe(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    links = with_links(world)
    world.channel("email", email_config(port))
    world.stories(2)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "sent"
    assert handler.recipients == [["reader@example.com"], ["boss@example.com"]]
    seen = []
    for raw, [address] in zip(handler.messages, handler.recipients, strict=True):
        message = message_from_bytes(raw, policy=default)
        assert message["To"] == address
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = str(message["List-Unsubscribe"]).strip("<>")
        [token] = parse_qs(urlsplit(url).query)["t"]
        claim = links.verify(token, "unsubscribe", now=world.clock())
        assert claim.recipient == address and claim.organization_id == world.org_id
        seen.append(url)
        plain = message.get_body(("plain",))
        assert plain is not None
        text = plain.get_content()
        assert text.count("Relevant: https://newsmon.example/d/feedback?t=") == 2
        # the channel's own unsubscribe address stays, beside newsmon's one-click link
        assert "Email preferences: https://newsmon.example/unsubscribe?c=1" in text
    assert len(set(seen)) == 2


def test_outlet_is_the_feeds_title_and_times_are_in_the_channels_zone(world: World) -> None:
    world.channel("file", {"directory": "out", "formats": ["markdown"], "timezone": "Asia/Tokyo"})
    [story_id, _] = world.stories(2)
    with unit_of_work(world.engine) as session:
        source = Source(url=f"http://127.0.0.1:9/{new_id()}.xml", title="Daily Planet")
        session.add(source)
        session.flush()
        entry = Entry(
            sourceId=source.id,
            canonicalUrl="http://127.0.0.1:9/a",
            url="http://127.0.0.1:9/a",
            title="t",
            contentHash="h",
        )
        session.add(entry)
        session.flush()
        session.execute(
            update(Story)
            .where(Story.id == story_id)
            .values(
                entryId=entry.id,
                sourceName="127.0.0.1",
                publishedAt=world.clock() - timedelta(hours=2),
            )
        )
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "sent"
    assert result.outcome.response is not None
    text = Path(result.outcome.response).read_text(encoding="utf-8")
    assert "Daily Planet · 2 h ago (" in text and " JST)" in text
    assert "127.0.0.1" not in text and "127\\.0" not in text


def test_slack_digests_carry_feedback_buttons_when_clicks_can_come_back(world: World) -> None:
    links = with_links(world)
    with LocalHTTPServer(routes={"/services/T1/B1/x": Response(body=b"ok")}) as server:
        world.channel("slack", {"url": server.url_for("/services/T1/B1/x")})
        world.stories(2)
        [linked_id] = world.plan()
        assert world.deliver(linked_id).outcome.kind == "sent"  # type: ignore[union-attr]
        world.ctx = dataclasses.replace(world.ctx, slack_buttons=True)
        world.stories(2)
        [buttons_id] = world.plan()
        assert world.deliver(buttons_id).outcome.kind == "sent"  # type: ignore[union-attr]
        linked, buttons = (json.loads(r.body) for r in server.requests)
    assert "|Relevant>" in json.dumps(linked) and '"actions"' not in json.dumps(linked)
    actions = [b for b in buttons["blocks"] if b["type"] == "actions"]
    assert len(actions) == 2 and "/d/feedback" not in json.dumps(buttons)
    for block in actions:
        for button in block["elements"]:
            claim = links.verify(button["value"], "feedback", now=world.clock())
            assert claim.organization_id == world.org_id
