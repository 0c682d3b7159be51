"""A backlog's deliveries travel in batches (one message, one pooled connection): its
webhooks are claimed together ahead of their turns (the rest in turn), each is sent
once, a batch past its budget gives back its claims and hands the rest back to the
queue, and a dead-lettered batch is resolved only once all of it is."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from datetime import datetime, timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

from core.config import Settings
from core.db.models import Delivery, News, Organization, Story
from core.db.session import make_engine, unit_of_work
from core.delivery.claims import claim_batch_and_load
from core.delivery.deliveries import DeliverResult, deliver_in_turn
from core.delivery.model import load_digest
from core.scheduling.leases import LeaseKeeper
from tests.support import factories
from tests.support.delivery import (  # noqa: F401  (world, pg_world are fixtures)
    START,
    World,
    drain_deliveries,
    pg_world_fixture,
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
        # No budget: each message sends its first delivery and hands the rest back (on
        # PostgreSQL, claimed ahead and given back first: no attempt spent).
        declare_deliver_actor(
            broker, world.engine, lambda: world.ctx, budget=timedelta(0), keeper=keeper_of(world)
        )
        enqueue_deliveries(broker, ids, batch_size=3)
        drain_deliveries(broker, threads=2)
        assert server.total_hits == 3
    assert [(world.row(d).state, world.row(d).attempts) for d in ids] == [("sent", 1)] * 3
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


def test_a_batch_s_connection_goes_back_to_the_pool_transactional(pg_world: World) -> None:
    """The batch's connection is in autocommit only while the batch holds it: the next
    user of the pooled connection gets transactions (a unit of work's rollback undoes)."""
    url = pg_world.engine.url.render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with LocalHTTPServer(routes={"/hook0": Response()}) as server:
            ids = hooks(pg_world, server, 1)
            list(deliver_in_turn(engine, ids, pg_world.ctx, budget=timedelta(minutes=1)))
        assert pg_world.row(ids[0]).state == "sent"
        with engine.connect() as conn:
            assert conn.get_isolation_level() != "AUTOCOMMIT"
            conn.execute(update(Delivery).where(Delivery.id == ids[0]).values(state="pending"))
            conn.rollback()
        assert pg_world.row(ids[0]).state == "sent"
    finally:
        engine.dispose()


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


def webhooks_and_a_file(world: World, server: LocalHTTPServer) -> tuple[list[str], str]:
    """Two webhook channels and a file channel, one digest of two stories, both copies
    of one more: the webhooks' delivery ids and the file's. One copy is in the digest
    (shown on its own), the other not (shown under the first story)."""
    for index in range(2):
        world.channel("webhook", {"url": server.url_for(f"/hook{index}"), "secret": SECRET})
    file_channel = world.channel("file", {"directory": "out"})
    lead, linked_copy = world.stories(2)
    by_channel = {world.row(d).channelId: d for d in world.plan()}
    with unit_of_work(world.engine) as session:
        search = session.get(News, world.news_id)
        assert search is not None
        factories.story(session, search, "https://copy.example/1", duplicateOfId=lead)
        session.execute(update(Story).where(Story.id == linked_copy).values(duplicateOfId=lead))
    return [by_channel[c] for c in world.channel_ids[:2]], by_channel[file_channel]


def test_a_batch_claims_its_due_webhooks_at_once_with_what_their_sends_read(
    pg_world: World,
) -> None:
    world = pg_world
    with LocalHTTPServer(routes={"/hook0": Response(), "/hook1": Response()}) as server:
        hook_ids, file_id = webhooks_and_a_file(world, server)
        later = world.clock() + timedelta(hours=1)
        with unit_of_work(world.engine) as session:
            session.execute(
                update(Delivery).where(Delivery.id == hook_ids[1]).values(nextAttemptAt=later)
            )
        with world.engine.connect() as conn:
            claimed = claim_batch_and_load(
                conn, [*hook_ids, file_id, "no-such-delivery"], now=world.clock()
            )
            digest = load_digest(conn, world.org_id, world.row(hook_ids[0]).digestId)
    # Only the due webhook: not the one due later, not the file (claimed in its turn).
    assert list(claimed) == hook_ids[:1]
    loaded = claimed[hook_ids[0]]
    assert loaded.digest == digest  # the stories in order, the copy under the first
    assert [len(s.also_reported) for s in digest.stories] == [1, 0]
    assert (loaded.channel.id, loaded.claim.attempt, loaded.claim.resumed) == (
        world.channel_ids[0],
        1,
        False,
    )
    rows = {d: world.row(d) for d in (*hook_ids, file_id)}
    assert [(r.state, r.attempts) for r in rows.values()] == [
        ("sending", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert rows[hook_ids[0]].leaseUntil == loaded.claim.lease_until


def in_turn(
    world: World, ids: list[str], keeper: LeaseKeeper | None = None
) -> Generator[tuple[str, DeliverResult]]:
    """``deliver_in_turn`` of ``ids`` on the world's clock, with a minute's budget."""
    return deliver_in_turn(
        world.engine, ids, world.ctx, budget=timedelta(minutes=1), clock=world.clock, keeper=keeper
    )


def keeper_of(world: World) -> LeaseKeeper:
    lease = timedelta(seconds=30)
    return LeaseKeeper(world.engine, run_lease=lease, delivery_lease=lease, clock=world.clock)


def test_a_delivery_locked_elsewhere_is_left_to_its_turn(pg_world: World) -> None:
    """The batch's claim skips a row another transaction holds (it does not wait for it
    or deadlock with another claimer); its turn claims it once that lock is gone."""
    world = pg_world
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(3)}) as server:
        ids = hooks(world, server, 3)
        with world.engine.connect() as other, world.engine.connect() as conn:
            other.execute(select(Delivery.id).where(Delivery.id == ids[1]).with_for_update())
            claimed = claim_batch_and_load(conn, ids, now=world.clock())
            other.rollback()
        assert sorted(claimed) == sorted([ids[0], ids[2]])
        assert world.row(ids[1]).state == "pending"
        # The worker that claimed them died: the two are taken over once their lease
        # expired (webhooks: sent again as abandoned claims), the third claimed in turn.
        world.clock.now += timedelta(minutes=5)
        done = dict(in_turn(world, ids))
        assert {path: server.hits[path] for path in server.routes} == {
            f"/hook{i}": 1 for i in range(3)
        }
    assert all(r.outcome is not None and r.outcome.kind == "sent" for r in done.values())
    assert [world.row(d).attempts for d in ids] == [2, 1, 2]


def test_claims_a_batch_did_not_reach_are_given_back(pg_world: World) -> None:
    """A batch whose consumer stops after the first result (its actor failed): the
    claims it had taken ahead are pending again, due as planned, no attempt spent."""
    world = pg_world
    keeper = keeper_of(world)
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(3)}) as server:
        ids = hooks(world, server, 3)
        batch = in_turn(world, ids, keeper)
        first, result = next(batch)
        assert (first, world.row(ids[1]).state) == (ids[0], "sending")  # claimed ahead
        assert keeper.held()[1] == set(ids[1:])
        batch.close()
        assert server.total_hits == 1
    assert result.outcome is not None and result.outcome.kind == "sent"
    assert keeper.held() == (set(), set())
    for delivery_id in ids[1:]:
        row = world.row(delivery_id)
        assert (row.state, row.attempts, row.leaseUntil) == ("pending", 0, None)


def test_without_a_keeper_each_is_claimed_in_its_turn(pg_world: World) -> None:
    """Nothing would renew a claim taken ahead: it could expire while it waits."""
    world = pg_world
    with LocalHTTPServer(routes={f"/hook{i}": Response() for i in range(2)}) as server:
        ids = hooks(world, server, 2)
        batch = in_turn(world, ids)
        assert next(batch)[0] == ids[0]
        assert world.row(ids[1]).state == "pending"
        assert [d for d, _ in batch] == ids[1:]


def test_the_keeper_renews_the_claims_waiting_their_turn(pg_world: World) -> None:
    world = pg_world
    keeper = keeper_of(world)
    seen: list[set[str]] = []
    leases: list[datetime | None] = []

    def first(_: Request) -> Response:
        seen.append(keeper.held()[1])
        leases.append(world.row(ids[1]).leaseUntil)
        world.clock.now += timedelta(seconds=20)
        keeper.renew()  # a heartbeat while the first is sent
        return Response()

    with LocalHTTPServer(routes={"/hook0": first, "/hook1": Response()}) as server:
        ids = hooks(world, server, 2)
        done = list(in_turn(world, ids, keeper))
    assert seen == [set(ids)]  # both held while the first was sent
    assert leases == [START + timedelta(seconds=30)]
    assert [r.outcome.kind for _, r in done if r.outcome is not None] == ["sent", "sent"]
    assert keeper.held() == (set(), set())
    # The renewal moved the second's fence while it waited: recorded under the new one.
    assert [(world.row(d).state, world.row(d).attempts) for d in ids] == [("sent", 1)] * 2
