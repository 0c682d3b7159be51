"""A backlog's deliveries travel in batches (one message, one pooled connection): each
is claimed in its turn and sent once, a batch past its budget hands the rest back to
the queue untouched, and a dead-lettered batch is resolved only once all of it is."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import dramatiq
import pytest
from sqlalchemy import update

from core.config import Settings
from core.db.models import Organization
from core.db.session import unit_of_work
from core.delivery.deliveries import deliver_in_turn
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    World,
    drain_deliveries,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Request, Response
from workers.broker import DELIVER_QUEUE, build_broker
from workers.dead_letters import DeadLetter, list_dead_letters, resolve_dead_letters
from workers.deliver import declare_deliver_actor, enqueue_deliveries

SECRET = "whsec_" + "a" * 44


def hooks(world: World, server: LocalHTTPServer, count: int) -> list[str]:
    """``count`` webhook channels of the search (``/hook0``, ``/hook1``...) and one
    digest planned to them: its delivery ids, in channel order."""
    for index in range(count):
        world.channel("webhook", {"url": server.url_for(f"/hook{index}"), "secret": SECRET})
    world.stories(1)
    planned = world.plan()
    assert len(planned) == count
    by_channel = {world.row(d).channelId: d for d in planned}
    return [by_channel[c] for c in world.channel_ids]


def test_a_batch_with_repeats_sends_each_delivery_once(world: World) -> None:
    broker = build_broker(Settings())
    routes = {f"/hook{i}": Response() for i in range(3)}
    with LocalHTTPServer(routes=routes) as server:
        ids = hooks(world, server, 3)
        declare_deliver_actor(broker, world.engine, lambda: world.ctx)
        enqueue_deliveries(broker, ids + ids + ids[:1], batch_size=4)
        queued = [dramatiq.Message.decode(data) for data in broker.queues[DELIVER_QUEUE].queue]
        assert [m.args for m in queued] == [tuple(ids + ids[:1]), tuple(ids[1:] + ids[:1])]
        drain_deliveries(broker, threads=2)
        assert {path: server.hits[path] for path in routes} == dict.fromkeys(routes, 1)
    for delivery_id in ids:
        assert (world.row(delivery_id).state, world.row(delivery_id).attempts) == ("sent", 1)


def test_a_batch_past_its_budget_sends_the_rest_from_new_messages(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workers.deliver")
    broker = build_broker(Settings())
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(3)}) as server:
        ids = hooks(world, server, 3)
        # No budget: each message sends its first delivery and hands the rest back.
        declare_deliver_actor(broker, world.engine, lambda: world.ctx, budget=timedelta(0))
        enqueue_deliveries(broker, ids, batch_size=3)
        drain_deliveries(broker, threads=2)
        assert server.total_hits == 3
    assert [world.row(d).state for d in ids] == ["sent"] * 3
    handed_back = [r.getMessage() for r in caplog.records if "back to the queue" in r.message]
    assert handed_back == [
        "batch over its budget: 2 deliveries back to the queue",
        "batch over its budget: 1 deliveries back to the queue",
    ]


def test_a_malformed_batch_member_is_a_dead_letter_and_its_batch_mates_are_sent(
    world: World,
) -> None:
    """A message whose second id is not an id (a hand-made or corrupted message): that
    member fails with the database's refusal (a dead letter naming the whole message),
    the one before it was sent, and the one after it is handed back and sent."""
    broker = build_broker(Settings())
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(2)}) as server:
        ids = hooks(world, server, 2)
        declare_deliver_actor(broker, world.engine, lambda: world.ctx)
        malformed = (ids[0], {"id": ids[1]}, ids[1])
        broker.enqueue(dramatiq.Message(DELIVER_QUEUE, "deliver", malformed, {}, {}))
        drain_deliveries(broker, failing=True)
        assert server.total_hits == 2
    assert [world.row(d).state for d in ids] == ["sent", "sent"]
    [letter] = list_dead_letters(broker, DELIVER_QUEUE)
    assert letter.args == (ids[0], {"id": ids[1]}, ids[1])
    # The excerpt ends with SQLAlchemy's link for a ProgrammingError (code f405).
    assert letter.traceback is not None and "/e/21/f405" in letter.traceback


def test_a_slow_receiver_holds_back_the_rest_of_its_batch_only_for_the_budget(
    world: World,
) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.3)
        return Response()

    with LocalHTTPServer(routes={"/hook0": slow, "/hook1": Response()}) as server:
        ids = hooks(world, server, 2)
        done = list(
            deliver_in_turn(
                world.engine, ids, world.ctx, budget=timedelta(seconds=0.1), clock=world.clock
            )
        )
        assert [d for d, _ in done] == ids[:1]
        assert server.hits["/hook1"] == 0
    untouched = world.row(ids[1])
    # Never claimed: due as planned, no attempt spent, ready for the message it goes to.
    assert (untouched.state, untouched.attempts, untouched.leaseUntil) == ("pending", 0, None)


def test_a_batch_commits_failures_and_held_days_between_its_one_statement_sends(
    world: World,
) -> None:
    """On PostgreSQL the batch's connection stays in autocommit; a failure's record and
    the day's limit are transactions of several statements within it. Each is committed
    (read here on other connections) and the next delivery is sent as usual."""
    with unit_of_work(world.engine) as session:
        session.execute(
            update(Organization)
            .where(Organization.id == world.org_id)
            .values(maxDeliveriesPerDay=1)
        )
    routes = {"/hook0": Response(status=500), "/hook1": Response(), "/hook2": Response()}
    with LocalHTTPServer(routes=routes) as server:
        ids = hooks(world, server, 3)
        done = dict(deliver_in_turn(world.engine, ids, world.ctx, budget=timedelta(minutes=1)))
        assert [server.hits[p] for p in routes] == [1, 1, 0]
    failed, sent, held = (world.row(d) for d in ids)
    assert (failed.state, failed.attempts, failed.lastStatusCode) == ("pending", 1, 500)
    assert world.channel_row(world.channel_ids[0]).consecutiveFailures == 1
    assert (sent.state, sent.attempts) == ("sent", 1)  # the failure gave its place back
    assert (held.state, held.heldReason) == ("pending", done[ids[2]].held)
    assert held.heldReason is not None and "maxDeliveriesPerDay (1)" in held.heldReason


def test_a_dead_lettered_batch_is_resolved_once_every_delivery_in_it_is_sent(
    world: World,
) -> None:
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(2)}) as server:
        ids = hooks(world, server, 2)
        letter = DeadLetter(DELIVER_QUEUE, "m1", "deliver", tuple(ids), {}, None, 0, None)

        def resolution() -> str | None:
            with unit_of_work(world.engine) as session:
                [resolved] = resolve_dead_letters(session, [letter])
            return resolved.resolved

        assert resolution() is None
        world.deliver(ids[0])
        assert resolution() is None  # one of the two is still to be sent
        world.deliver(ids[1])
        assert resolution() == "deliveries: 2 sent"
