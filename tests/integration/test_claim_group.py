"""A worker process's threads claiming deliveries at the same time share statements:
claims asked while one is in progress are made together, each gets the answer its own
claim would give, and a group's failed statement fails only the thread that ran it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text, update
from sqlalchemy.exc import OperationalError, StatementError

from core.db.models import Delivery
from core.db.session import unit_of_work
from core.delivery.claim_group import ClaimGroup
from core.delivery.claims import LoadedDelivery
from tests.support.delivery import (  # noqa: F401  (world, pg_world are fixtures)
    World,
    pg_world_fixture,
    world_fixture,
)

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


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Claimer(threading.Thread):
    """A worker thread claiming one delivery with the group on a connection of its own."""

    def __init__(self, world: World, group: ClaimGroup, delivery_id: str) -> None:
        super().__init__(daemon=True)
        self.world, self.group, self.delivery_id = world, group, delivery_id
        self.connected = threading.Event()
        self.backend_pid = 0
        self.loaded: LoadedDelivery | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.world.engine.connect() as conn:
                self.backend_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                conn.rollback()
                self.connected.set()
                self.loaded = self.group.claim(conn, self.delivery_id, now=self.world.clock())
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()

    def started(self) -> Claimer:
        self.start()
        self.connected.wait(10)
        return self


def waits_for_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        event_type = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return bool(event_type == "Lock")


@contextmanager
def claims_held_up(world: World, first: str, group: ClaimGroup) -> Iterator[Claimer]:
    """A first claimer of ``first`` whose claim waits, inside its statement, for a lock
    another transaction holds on ``first``'s row until the block ends (the group is
    claiming meanwhile); yields it, then waits for it to finish."""
    with world.engine.connect() as holder:
        holder.execute(select(Delivery.id).where(Delivery.id == first).with_for_update())
        leader = Claimer(world, group, first).started()
        wait_until(lambda: waits_for_a_lock(world.engine, leader.backend_pid))
        yield leader
        holder.rollback()
    leader.join(10)


@contextmanager
def claim_statements(engine: Engine) -> Iterator[list[str]]:
    """The claim statements run on ``engine`` while the block runs."""
    seen: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if "UPDATE deliveries SET state=" in statement and "'sending'" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queued(world: World, group: ClaimGroup, ids: list[str]) -> list[Claimer]:
    """A claimer for each of ``ids``, each started once the one before waits for the
    group (so they are in the group in this order)."""
    claimers = []
    for delivery_id in ids:
        claimers.append(Claimer(world, group, delivery_id).started())
        wait_until(lambda: group.waiting == len(claimers))
    return claimers


def test_claims_asked_while_one_is_in_progress_are_made_in_one_statement(
    pg_world: World,
) -> None:
    world = pg_world
    ids = planned(world, webhooks=3, files=1)
    group = ClaimGroup()
    with claim_statements(world.engine) as statements:
        with claims_held_up(world, ids[0], group) as leader:
            others = queued(world, group, ids[1:])
        for claimer in others:
            claimer.join(10)
    claimers = [leader, *others]
    assert [c.error for c in claimers] == [None] * 4
    # The first claimed alone; the three that came while it waited, together, the file
    # channel's delivery too (each is sent as soon as it is claimed).
    assert len(statements) == 2
    loaded = [c.loaded for c in claimers]
    assert [(x.claim.id, x.claim.attempt, x.claim.resumed) for x in loaded if x] == [
        (delivery_id, 1, False) for delivery_id in ids
    ]
    assert [x.channel.type for x in loaded if x] == ["webhook"] * 3 + ["file"]
    for claimer in others:
        assert claimer.loaded is not None and claimer.loaded.digest.stories
    rows = [world.row(d) for d in ids]
    assert [(r.state, r.attempts) for r in rows] == [("sending", 1)] * 4
    assert [r.leaseUntil for r in rows[1:]] == [
        c.loaded.claim.lease_until for c in others if c.loaded
    ]


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
    with claims_held_up(world, lead, group):
        claimers = queued(world, group, [due, done, later, abandoned])
    for claimer in claimers:
        claimer.join(10)
    answers = {c.delivery_id: c.loaded for c in claimers}
    assert [c.error for c in claimers] == [None] * 4
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
    with claims_held_up(world, ids[0], group) as leader:
        next_leader, other = queued(world, group, ids[1:])
        with world.engine.connect() as admin:
            admin.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": next_leader.backend_pid}
            )
            admin.commit()
    for claimer in (next_leader, other):
        claimer.join(10)
    assert leader.error is None and leader.loaded is not None
    assert isinstance(next_leader.error, OperationalError)
    assert other.error is None and other.loaded is not None
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
