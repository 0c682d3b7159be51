"""Attempt history: every recorded outcome of a delivery leaves a ``deliveryAttempts``
row (time, outcome, status, duration, a bounded and masked excerpt), written with the
outcome; real local receivers on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from core.db.models import DeliveryAttempt
from core.db.session import unit_of_work
from core.delivery.attempts import delivery_attempts
from core.delivery.outcome import MAX_RESPONSE_EXCERPT
from core.delivery.replay import replay_delivery
from tests.support.delivery import (  # noqa: F401  (world and smtp are fixtures)
    SECRET,
    SMTPHandler,
    World,
    smtp_fixture,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Request, Response

#: How long the receiver below takes to answer: the least duration an attempt records.
RECEIVER_DELAY_S = 0.05


def failing_then_ok(*bodies: tuple[int, bytes]) -> Callable[[Request], Response]:
    """Answer each request, after a short pause, with the next (status, body); the last
    one repeats."""
    answers = list(bodies)

    def handle(_request: Request) -> Response:
        time.sleep(RECEIVER_DELAY_S)
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return Response(status=status, body=body)

    return handle


def attempts_of(world: World, delivery_id: str) -> list[DeliveryAttempt]:
    with unit_of_work(world.engine) as session:
        rows = list(delivery_attempts(session, world.org_id, delivery_id))
        session.expunge_all()
    return rows


def test_a_failure_then_a_success_are_two_attempts_with_status_codes_and_durations(
    world: World,
) -> None:
    handler = failing_then_ok((503, b"busy, try later"), (200, b"thanks"))
    with LocalHTTPServer(routes={"/hook": handler}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        first_try = world.clock()
        result = world.deliver(delivery_id)
        assert result.retry_at is not None
        world.clock.now = result.retry_at
        assert world.deliver(delivery_id).outcome.kind == "sent"  # type: ignore[union-attr]
        assert server.hits["/hook"] == 2
    first, second = attempts_of(world, delivery_id)
    assert (first.attempt, first.outcome, first.statusCode) == (1, "failed", 503)
    assert (first.error, first.response) == ("HTTP 503", "busy, try later")
    assert (second.attempt, second.outcome, second.statusCode) == (2, "sent", 200)
    assert (second.error, second.response) == (None, "thanks")
    assert (first.startedAt, second.startedAt) == (first_try, result.retry_at)
    for attempt in (first, second):
        assert attempt.durationMs is not None
        assert RECEIVER_DELAY_S * 1000 <= attempt.durationMs < 5000
    # the delivery row still shows the last attempt, as before
    assert (world.row(delivery_id).state, world.row(delivery_id).attempts) == ("sent", 2)


def test_an_attempts_excerpt_is_bounded_and_never_holds_the_channels_secret(
    world: World,
) -> None:
    echo = b"signature did not verify with " + SECRET.encode() + b" " + b"x" * 5000
    with LocalHTTPServer(routes={"/hook": Response(status=400, body=echo)}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
    [attempt] = attempts_of(world, delivery_id)
    assert attempt.outcome == "failed" and attempt.statusCode == 400
    assert attempt.response is not None
    assert attempt.response.startswith("signature did not verify with ")
    assert SECRET not in attempt.response and SECRET[6:20] not in attempt.response
    assert len(attempt.response) <= MAX_RESPONSE_EXCERPT


def test_a_replay_continues_the_history_and_an_unsent_attempt_has_no_duration(
    world: World,
) -> None:
    with LocalHTTPServer(routes={"/hook": Response(status=410)}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)  # 410: the channel is broken
        with unit_of_work(world.engine) as session:
            replay_delivery(session, world.org_id, delivery_id, now=world.clock())
        world.clock.now += timedelta(seconds=1)
        world.deliver(delivery_id)  # failed without an attempt on the wire
        assert server.hits["/hook"] == 1
    sent, unsent = attempts_of(world, delivery_id)
    assert (sent.attempt, sent.statusCode) == (1, 410) and sent.durationMs is not None
    assert (unsent.attempt, unsent.outcome, unsent.statusCode) == (1, "failed", None)
    assert unsent.durationMs is None and unsent.error == "channel is broken"


def test_a_duplicate_message_records_no_attempt(world: World) -> None:
    with LocalHTTPServer(routes={"/hook": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        assert world.deliver(delivery_id).outcome is None
    with unit_of_work(world.engine) as session:
        rows = session.scalars(select(DeliveryAttempt.deliveryId)).all()
    assert rows == [delivery_id]


def test_an_email_attempt_records_the_smtp_reply_code(
    world: World, smtp: tuple[SMTPHandler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_reply = "451 4.3.0 try again later"
    config = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "newsmon@example.com",
        "to": ["reader@example.com"],
    }
    world.channel("email", config)
    world.stories(1)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id)
    assert result.retry_at is not None
    handler.rcpt_reply = None
    world.clock.now = result.retry_at
    world.deliver(delivery_id)
    refused, accepted = attempts_of(world, delivery_id)
    assert (refused.outcome, refused.statusCode) == ("failed", 451)
    assert "try again later" in (refused.error or "")
    assert (accepted.outcome, accepted.statusCode) == ("sent", 250)
    assert accepted.durationMs is not None and handler.messages
