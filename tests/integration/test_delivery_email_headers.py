"""Email header fields never inject headers, and a delivery that cannot be built ends
``failed`` with its reason (row 65): a stored config with CR LF in ``from`` (saved before
the check existed) through the real deliver actor on a worker, a search name holding an
RFC 2047 encoded CR LF through aiosmtpd, a message that cannot be encoded."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes
from email.policy import default
from typing import Any

import dramatiq
import pytest
from sqlalchemy import update

from core.config import Settings
from core.db.models import Channel, News, NewsChannel
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.deliveries import send_or_fail
from core.delivery.model import load_digest
from core.errors import ValidationError
from core.ids import new_id
from tests.integration.test_delivery_peers import email_config
from tests.support.delivery import (  # noqa: F401  (the fixtures provide `world`, `smtp`)
    SMTPHandler,
    World,
    smtp_fixture,
    world_fixture,
)
from workers.broker import DELIVER_QUEUE, build_broker
from workers.deliver import declare_deliver_actor, enqueue_deliveries

#: An encoded word that decodes to CR LF and a header of the sender's choosing.
ENCODED_CRLF = "=?utf-8?q?x=0D=0ABcc:_leak@evil.example?="


def stored_unchecked(world: World, config: dict[str, Any]) -> str:
    """An email channel whose config was saved before today's checks (sealed as given)."""
    channel_id = new_id()
    unchecked = ch.EmailConfig.model_construct(
        **{**config, "sender": config["from"], "security": "none", "username": None}
    )
    with unit_of_work(world.engine) as session:
        stored = ch.seal_config("email", unchecked, world.keyring, world.org_id, channel_id)
        channel = Channel(id=channel_id, organizationId=world.org_id, type="email", config=stored)
        session.add(channel)
        session.flush()
        session.add(
            NewsChannel(organizationId=world.org_id, newsId=world.news_id, channelId=channel_id)
        )
    return channel_id


def test_stored_crlf_sender_fails_the_delivery_on_a_worker_without_a_dead_letter(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    config = {**email_config(port), "from": "news@example.com\r\nBcc: leak@evil.example"}
    stored_unchecked(world, config)
    world.stories(1)
    [delivery_id] = world.plan()
    broker = build_broker(Settings())
    declare_deliver_actor(broker, world.engine, lambda: world.ctx)
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        enqueue_deliveries(broker, [delivery_id])
        broker.join(DELIVER_QUEUE)
        worker.join()
    finally:
        worker.stop()
    row = world.row(delivery_id)
    assert (row.state, row.leaseUntil) == ("failed", None)
    assert row.lastError is not None and "config.from" in row.lastError
    assert broker.dead_letters == []  # type: ignore[attr-defined]
    assert handler.messages == []


def test_encoded_crlf_in_the_search_name_adds_no_header(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    with unit_of_work(world.engine) as session:
        session.execute(update(News).where(News.id == world.news_id).values(name=ENCODED_CRLF))
    world.channel("email", email_config(port))
    world.stories(1)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "sent", result.outcome
    [raw] = handler.messages
    head = raw.split(b"\r\n\r\n")[0]
    assert b"\nBcc:" not in head and b"\nbcc:" not in head.lower()
    message = message_from_bytes(raw, policy=default)
    assert message["Bcc"] is None
    assert "\n" not in str(message["Subject"]) and "Bcc:_leak" in str(message["Subject"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from", "news@example.com\r\nBcc: leak@evil.example"),
        ("from", f"{ENCODED_CRLF} <news@example.com>"),
        ("to", ["reader@example.com\nBcc: leak@evil.example"]),
        ("to", [f"{ENCODED_CRLF} <reader@example.com>"]),
        ("unsubscribeUrl", "https://newsmon.example/u\r\nBcc:leak@evil.example"),
        ("unsubscribeUrl", f"https://newsmon.example/u?t={ENCODED_CRLF}"),
        ("unsubscribeMailto", "u@newsmon.example\rX-Evil:1"),
        ("unsubscribeMailto", "u@newsmon.example>,<https://evil.example/"),
    ],
)
def test_header_injection_in_an_email_config_is_refused_naming_the_field(
    field: str, value: object
) -> None:
    config = {**email_config(25), field: value}
    with pytest.raises(ValidationError) as refused:
        ch.validate_config("email", config)
    assert refused.value.field is not None and refused.value.field.startswith(f"config.{field}")


def test_a_message_that_cannot_be_built_is_a_recorded_failure_not_an_exception(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    channel_id = world.channel("email", email_config(port))
    world.stories(1)
    [delivery_id] = world.plan()
    with unit_of_work(world.engine) as session:
        digest = load_digest(session, world.org_id, world.row(delivery_id).digestId)
        channel = session.get(Channel, channel_id)
        assert channel is not None
        session.expunge(channel)
    # A lone surrogate (what a broken decoder leaves) cannot be encoded as UTF-8.
    story = dataclasses.replace(digest.stories[0], title="broken \udc80 title")
    broken = dataclasses.replace(digest, stories=(story,))
    outcome = send_or_fail(
        channel, broken, delivery_id=delivery_id, ctx=world.ctx, now=world.clock()
    )
    assert (outcome.kind, outcome.permanent) == ("failed", True)
    assert outcome.error is not None and "UnicodeEncodeError" in outcome.error
    assert handler.messages == []
