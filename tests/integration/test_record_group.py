"""Sent records a worker process's threads write at the same time share one statement:
it writes what each record of its own would (under each claim's fence, with its attempt
row, marks and usage count), other outcomes are recorded alone, and a refused shared
statement leaves each thread to record alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import DataError

from core.db.models import Delivery, DeliveryAttempt, News, Story, Usage
from core.db.session import unit_of_work
from core.delivery.claims import LoadedDelivery, claim_and_load
from core.delivery.outcome import Outcome
from core.delivery.record import SentRecord, record_outcome, record_sent_together
from core.delivery.record_group import RecordGroup
from tests.support.delivery import (  # noqa: F401  (world, pg_world are fixtures)
    World,
    pg_world_fixture,
    world_fixture,
)
from tests.support.gathering import Asker, held_up, queued, statements_with

SECRET = "whsec_" + "a" * 44
SENT = Outcome.sent(200, "accepted")


def claimed(world: World, count: int) -> list[LoadedDelivery]:
    """``count`` deliveries of one webhook channel, each of its own one-story digest,
    claimed (nothing is sent: the records are what is tested)."""
    world.channel("webhook", {"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    ids = []
    for _ in range(count):
        world.stories(1)
        ids.extend(world.plan())
        world.clock.now += timedelta(minutes=5)
    with world.engine.connect() as conn:
        loaded = [claim_and_load(conn, d, now=world.clock()) for d in ids]
    assert all(loaded)
    return [item for item in loaded if item is not None]


def sent_record(item: LoadedDelivery, duration_ms: int = 12) -> SentRecord:
    return SentRecord(item.claim, SENT, item.claim.lease_until - timedelta(seconds=29), duration_ms)


def attempts_of(world: World, delivery_id: str) -> list[tuple[Any, ...]]:
    with unit_of_work(world.engine) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    DeliveryAttempt.attempt,
                    DeliveryAttempt.outcome,
                    DeliveryAttempt.statusCode,
                    DeliveryAttempt.durationMs,
                    DeliveryAttempt.error,
                    DeliveryAttempt.response,
                    DeliveryAttempt.startedAt,
                ).where(DeliveryAttempt.deliveryId == delivery_id)
            )
        ]


def delivery_columns(world: World, delivery_id: str) -> tuple[Any, ...]:
    row = world.row(delivery_id)
    return (
        row.state,
        row.attempts,
        row.sentAt,
        row.lastStatusCode,
        row.response,
        row.leaseUntil,
        row.lastError,
        row.heldReason,
        row.nextAttemptAt,
    )


def sent_count(world: World) -> int:
    with unit_of_work(world.engine) as session:
        return session.scalar(select(func.sum(Usage.deliveriesSent))) or 0


def delivered_stories(world: World) -> int:
    with unit_of_work(world.engine) as session:
        return session.scalar(select(func.count()).where(Story.wasDelivered)) or 0


def test_records_together_write_what_a_record_of_its_own_writes(pg_world: World) -> None:
    world = pg_world
    alone, together = claimed(world, 2)
    now = world.clock()
    with world.engine.connect() as conn:
        single = sent_record(alone)
        record_outcome(
            conn,
            alone.claim,
            alone.channel,
            SENT,
            now=now,
            started_at=single.started_at,
            duration_ms=single.duration_ms,
        )
        assert record_sent_together(conn, [sent_record(together)], now=now) == 1
    assert delivery_columns(world, together.claim.id) == delivery_columns(world, alone.claim.id)
    assert delivery_columns(world, together.claim.id)[:2] == ("sent", 1)
    assert attempts_of(world, together.claim.id) == attempts_of(world, alone.claim.id)
    assert len(attempts_of(world, together.claim.id)) == 1
    assert (delivered_stories(world), sent_count(world)) == (2, 2)
    with unit_of_work(world.engine) as session:
        assert session.scalar(select(News.lastSent).where(News.id == world.news_id)) == now


def test_only_deliveries_whose_fence_held_are_recorded_and_counted(pg_world: World) -> None:
    """A delivery whose lease was taken over after it expired is left to its new
    holder: no record, no attempt row, no mark, no count."""
    world = pg_world
    items = claimed(world, 3)
    taken = items[1].claim.id
    with unit_of_work(world.engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == taken)
            .values(attempts=2, leaseUntil=world.clock() + timedelta(minutes=1))
        )
    with world.engine.connect() as conn:
        held = record_sent_together(conn, [sent_record(i) for i in items], now=world.clock())
    assert held == 2
    assert [world.row(i.claim.id).state for i in items] == ["sent", "sending", "sent"]
    assert attempts_of(world, taken) == []
    assert (delivered_stories(world), sent_count(world)) == (2, 2)


def recording(
    world: World, group: RecordGroup, item: LoadedDelivery, duration_ms: int = 12
) -> Callable[[Connection], Any]:
    """What a worker thread asks: ``item`` recorded as sent with ``group``."""
    return lambda conn: group.record(
        conn,
        item.claim,
        item.channel,
        SENT,
        now=world.clock(),
        started_at=world.clock(),
        duration_ms=duration_ms,
    )


def recorded_together(
    world: World, items: list[LoadedDelivery], duration_ms: dict[str, int] | None = None
) -> list[Asker]:
    """The first item recorded by a thread that waits (inside its statement) for a lock
    held on its row, the others by threads asking meanwhile, in order; all joined.
    ``duration_ms``: a send's duration by delivery id (12 ms otherwise)."""
    group = RecordGroup()
    durations = duration_ms or {}
    asks = [recording(world, group, i, durations.get(i.claim.id, 12)) for i in items]
    with held_up(world.engine, items[0].claim.id, asks[0]) as leader:
        others = queued(world.engine, group, asks[1:])
    for recorder in others:
        recorder.join(10)
    return [leader, *others]


def test_records_asked_while_one_is_in_progress_are_written_in_one_statement(
    pg_world: World,
) -> None:
    world = pg_world
    items = claimed(world, 4)
    with statements_with(world.engine, "AS sent(id") as statements:
        recorders = recorded_together(world, items)
    assert [r.error for r in recorders] == [None] * 4
    # The first alone, the three that came while it waited together.
    assert len(statements) == 1
    assert [world.row(i.claim.id).state for i in items] == ["sent"] * 4
    assert [len(attempts_of(world, i.claim.id)) for i in items] == [1] * 4
    assert (delivered_stories(world), sent_count(world)) == (4, 4)


def test_a_refused_shared_record_leaves_each_to_record_alone(pg_world: World) -> None:
    """One member's value the database refuses fails the shared statement: the others are
    then recorded alone, and only that member's thread meets the error."""
    world = pg_world
    items = claimed(world, 3)
    bad = items[1].claim.id
    recorders = recorded_together(world, items, {bad: 2**40})
    assert [type(r.error) for r in recorders] == [type(None), DataError, type(None)]
    assert [world.row(i.claim.id).state for i in items] == ["sent", "sending", "sent"]
    assert sent_count(world) == 2


def test_other_outcomes_and_sqlite_are_recorded_alone(world: World) -> None:
    """A failure is recorded as by ``record_outcome`` (its retry time returned); on SQLite
    a sent one too."""
    first, second = claimed(world, 2)
    group = RecordGroup()
    with world.engine.connect() as conn:
        retry_at = group.record(
            conn, first.claim, first.channel, Outcome.failed("HTTP 503"), now=world.clock()
        )
        again = group.record(conn, second.claim, second.channel, SENT, now=world.clock())
    assert retry_at is not None and retry_at > world.clock()
    assert again is None
    assert [world.row(i.claim.id).state for i in (first, second)] == ["pending", "sent"]
    assert sent_count(world) == 1
