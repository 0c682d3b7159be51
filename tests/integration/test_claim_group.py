"""A worker process's threads claiming deliveries at the same time share statements:
claims asked while one is in progress are made together, each gets the answer its own
claim would give, and a group's failed statement fails only the thread that ran it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, text, update
from sqlalchemy.exc import OperationalError, StatementError

from core.db.models import Delivery
from core.db.session import unit_of_work
from core.delivery.claim_group import ClaimGroup
from tests.support.delivery import (  # noqa: F401  (world, pg_world are fixtures)
    World,
    pg_world_fixture,
    world_fixture,
)
from tests.support.gathering import Asker, held_up, queued, statements_with

SECRET = "whsec_" + "a" * 44


def planned(world: World, webhooks: int, files: int = 0) -> list[str]:
    """One digest planned to ``webhooks`` webhook and ``files`` file channels: its
    delivery ids in channel order (nothing is sent here, so no receiver is needed)."""
    for index in range(webhooks):
        world.channel("webhook", {"url": f"http://127.0.0.1:9/hook{index}", "secret": SECRET})
    for index in range(files):
        world.channel("file", {"directory": f"out{index}"})
    world.stories(1)
    by_channel = {world.row(d).channelId: d for d in world.plan()}
    return [by_channel[c] for c in world.channel_ids]


def claiming(world: World, group: ClaimGroup, delivery_id: str) -> Callable[[Connection], Any]:
    """What a worker thread asks: ``delivery_id`` claimed with ``group``."""
    return lambda conn: group.claim(conn, delivery_id, now=world.clock())


def claimers(world: World, group: ClaimGroup, ids: list[str]) -> list[Asker]:
    """Threads claiming ``ids`` with ``group``, queued in this order."""
    return queued(world.engine, group, [claiming(world, group, d) for d in ids])


def test_claims_asked_while_one_is_in_progress_are_made_in_one_statement(
    pg_world: World,
) -> None:
    world = pg_world
    ids = planned(world, webhooks=3, files=1)
    group = ClaimGroup()
    with statements_with(world.engine, "WITH claim AS") as statements:
        with held_up(world.engine, ids[0], claiming(world, group, ids[0])) as leader:
            others = claimers(world, group, ids[1:])
        for claimer in others:
            claimer.join(10)
    threads = [leader, *others]
    assert [t.error for t in threads] == [None] * 4
    # The first claimed alone; the three that came while it waited, together, the file
    # channel's delivery too (each is sent as soon as it is claimed).
    assert len(statements) == 2
    loaded = [t.answer for t in threads]
    assert [(x.claim.id, x.claim.attempt, x.claim.resumed) for x in loaded if x] == [
        (delivery_id, 1, False) for delivery_id in ids
    ]
    assert [x.channel.type for x in loaded if x] == ["webhook"] * 3 + ["file"]
    for claimer in others:
        assert claimer.answer is not None and claimer.answer.digest.stories
    rows = [world.row(d) for d in ids]
    assert [(r.state, r.attempts) for r in rows] == [("sending", 1)] * 4
    assert [r.leaseUntil for r in rows[1:]] == [
        c.answer.claim.lease_until for c in others if c.answer
    ]


def test_a_delivery_two_threads_ask_for_at_once_is_claimed_by_one(pg_world: World) -> None:
    """The same delivery in two messages, asked in one group: one thread gets the claim,
    the other finds it taken (a shared answer would send it twice)."""
    world = pg_world
    lead, twice = planned(world, webhooks=2)
    group = ClaimGroup()
    with held_up(world.engine, lead, claiming(world, group, lead)):
        threads = claimers(world, group, [twice, twice])
    for thread in threads:
        thread.join(10)
    assert [t.error for t in threads] == [None, None]
    answers = [t.answer for t in threads]
    assert [a is not None for a in answers] == [True, False]
    row = world.row(twice)
    assert (row.state, row.attempts) == ("sending", 1)


def test_each_claimer_gets_the_answer_of_a_claim_of_its_own(pg_world: World) -> None:
    """Due: claimed with the group. Already sent, not due yet, or abandoned by a dead
    worker (its lease expired): left by the group's statement, and claimed alone."""
    world = pg_world
    lead, due, done, later, abandoned = planned(world, webhooks=5)
    now = world.clock()
    with unit_of_work(world.engine) as session:
        for delivery_id, values in (
            (done, {"state": "sent", "attempts": 1}),
            (later, {"nextAttemptAt": now + timedelta(hours=1)}),
            (abandoned, {"state": "sending", "attempts": 1, "leaseUntil": now - timedelta(1)}),
        ):
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
    group = ClaimGroup()
    with held_up(world.engine, lead, claiming(world, group, lead)):
        asked = [due, done, later, abandoned]
        threads = claimers(world, group, asked)
    for thread in threads:
        thread.join(10)
    answers = {d: t.answer for d, t in zip(asked, threads, strict=True)}
    assert [t.error for t in threads] == [None] * 4
    assert answers[done] is None and answers[later] is None
    claimed = {d: (x.claim.attempt, x.claim.resumed) for d, x in answers.items() if x}
    assert claimed == {due: (1, False), abandoned: (2, True)}
    assert [world.row(d).state for d in (due, done, later, abandoned)] == [
        "sending",
        "sent",
        "pending",
        "sending",
    ]


def test_a_group_statement_that_fails_fails_only_the_thread_that_ran_it(
    pg_world: World,
) -> None:
    """The thread claiming for the group lost its connection (the server ended it): it
    meets that outage, as its own claim would; the others claim alone and get theirs."""
    world = pg_world
    ids = planned(world, webhooks=3)
    group = ClaimGroup()
    with held_up(world.engine, ids[0], claiming(world, group, ids[0])) as leader:
        next_leader, other = claimers(world, group, ids[1:])
        with world.engine.connect() as admin:
            admin.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": next_leader.backend_pid}
            )
            admin.commit()
    for claimer in (next_leader, other):
        claimer.join(10)
    assert leader.error is None and leader.answer is not None
    assert isinstance(next_leader.error, OperationalError)
    assert other.error is None and other.answer is not None
    assert [(world.row(d).state, world.row(d).attempts) for d in ids] == [
        ("sending", 1),
        ("pending", 0),
        ("sending", 1),
    ]


def test_a_claim_alone_is_the_claim_of_its_own(world: World) -> None:
    """No other thread asking (and on SQLite always): claimed at once, once."""
    [delivery_id] = planned(world, webhooks=1)
    group = ClaimGroup()
    with world.engine.connect() as conn:
        loaded = group.claim(conn, delivery_id, now=world.clock())
        again = group.claim(conn, delivery_id, now=world.clock())
    assert loaded is not None and (loaded.claim.id, loaded.claim.attempt) == (delivery_id, 1)
    assert again is None
    assert world.row(delivery_id).state == "sending"


def test_a_member_that_is_not_an_id_fails_alone(pg_world: World) -> None:
    """A corrupted message's member never joins a group (whose statement it would fail
    for the others): its own claim refuses it."""
    group = ClaimGroup()
    with pg_world.engine.connect() as conn, pytest.raises(StatementError):
        group.claim(conn, {"id": "x"}, now=pg_world.clock())  # type: ignore[arg-type]
    assert group.waiting == 0
