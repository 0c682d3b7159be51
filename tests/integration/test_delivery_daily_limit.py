"""An organization's ``maxDeliveriesPerDay`` on SQLite and PostgreSQL: a digest past it is
never dropped: it waits, pending with a readable reason and no attempt spent, until the
next UTC day, when the sweeper hands it out again and it is sent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from core.db.models import Organization
from core.db.session import unit_of_work
from core.delivery.deliveries import SWEEP_GRACE, deliveries_to_enqueue
from core.usage.months import month_of
from core.usage.report import deliveries_today, usage_months
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    SECRET,
    START,
    World,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Response

MIDNIGHT = START.replace(hour=0, minute=0) + timedelta(days=1)


def _limit(world: World, per_day: int | None) -> None:
    with unit_of_work(world.engine) as session:
        session.execute(
            update(Organization)
            .where(Organization.id == world.org_id)
            .values(maxDeliveriesPerDay=per_day)
        )


def _due(world: World) -> list[str]:
    with unit_of_work(world.engine) as session:
        return deliveries_to_enqueue(session, now=world.clock())


def test_a_delivery_past_the_daily_limit_is_held_with_its_reason_then_sent_next_day(
    world: World,
) -> None:
    _limit(world, 1)
    with LocalHTTPServer(routes={"/a": Response(), "/b": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/a"), "secret": SECRET})
        world.channel("webhook", {"url": server.url_for("/b"), "secret": SECRET})
        world.stories(2)
        first, second = world.plan()
        assert world.deliver(first).outcome.kind == "sent"  # type: ignore[union-attr]
        held = world.deliver(second)
        assert held.outcome is None and held.held is not None
        row = world.row(second)
        assert (row.state, row.attempts, row.nextAttemptAt) == ("pending", 0, MIDNIGHT)
        assert row.heldReason == held.held
        assert row.heldReason == (
            "held: limit maxDeliveriesPerDay (1) reached on 2026-06-01 (UTC); "
            "it is sent after 2026-06-02 00:00 UTC"
        )
        assert sum(server.hits.values()) == 1
        # Later that day: a stray message claims nothing, the sweeper hands nothing out.
        world.clock.now = MIDNIGHT - timedelta(minutes=1)
        assert world.deliver(second).outcome is None
        assert second not in _due(world)
        # The next day: the sweeper enqueues it, and it is sent, its reason cleared.
        world.clock.now = MIDNIGHT + SWEEP_GRACE
        assert second in _due(world)
        assert world.deliver(second).outcome.kind == "sent"  # type: ignore[union-attr]
        assert sum(server.hits.values()) == 2
    row = world.row(second)
    assert (row.state, row.attempts, row.heldReason) == ("sent", 1, None)
    with unit_of_work(world.engine) as session:
        assert deliveries_today(session, world.org_id, world.clock()) == 1
        [usage] = usage_months(session, world.org_id, [month_of(START)])
    assert usage.deliveriesSent == 2


def test_a_failed_send_gives_its_place_back(world: World) -> None:
    _limit(world, 1)
    with LocalHTTPServer(routes={"/down": Response(status=503), "/up": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/down"), "secret": SECRET})
        world.channel("webhook", {"url": server.url_for("/up"), "secret": SECRET})
        world.stories(1)
        kinds = []
        for delivery_id in world.plan():
            result = world.deliver(delivery_id)
            assert result.held is None  # the failed attempt took no place for good
            assert result.outcome is not None
            kinds.append(result.outcome.kind)
    assert sorted(kinds) == ["failed", "sent"]
    with unit_of_work(world.engine) as session:
        assert deliveries_today(session, world.org_id, world.clock()) == 1


def test_without_a_limit_nothing_is_held_or_counted_per_day(world: World) -> None:
    with LocalHTTPServer(routes={"/a": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/a"), "secret": SECRET})
        for _ in range(3):
            world.stories(1)
            [delivery_id] = world.plan()
            assert world.deliver(delivery_id).outcome.kind == "sent"  # type: ignore[union-attr]
            world.clock.now += timedelta(hours=1)
    with unit_of_work(world.engine) as session:
        assert deliveries_today(session, world.org_id, world.clock()) == 0
