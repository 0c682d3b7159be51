"""Heartbeat-renewed leases against the real databases: a renewed claim outlives its first
lease and keeps the sweeper and other workers away; a released one is taken over after it;
a delivery's renewed lease is its new fence, under which the outcome is recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select

from core.db.models import Delivery, Run
from core.db.session import unit_of_work
from core.delivery.claims import DELIVERY_LEASE, claim_delivery
from core.delivery.deliveries import deliveries_to_enqueue
from core.scheduling.leases import RENEWALS_PER_LEASE, LeaseKeeper
from core.scheduling.runs import RUN_LEASE, claim_run, runs_to_enqueue
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    SECRET,
    Clock,
    World,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, RawConnection
from tests.support.runs import one_queued_run

#: Renewals in a test: together they span several first leases.
RENEWALS = 3 * RENEWALS_PER_LEASE


def keeper_on(engine: Engine, clock: Clock) -> LeaseKeeper:
    return LeaseKeeper(engine, run_lease=RUN_LEASE, delivery_lease=DELIVERY_LEASE, clock=clock)


def lease_of(engine: Engine, model: type[Run] | type[Delivery], row_id: str) -> datetime | None:
    with unit_of_work(engine) as session:
        return session.scalar(select(model.leaseUntil).where(model.id == row_id))


def test_a_renewed_run_is_never_taken_over_and_a_released_one_is(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    clock = Clock(now)
    keeper = keeper_on(db_engine, clock)
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    keeper.hold_run(claimed.id, claimed.attempt)
    for _ in range(RENEWALS):  # a slow step, three leases long
        clock.now += RUN_LEASE / RENEWALS_PER_LEASE
        keeper.renew()
        with unit_of_work(db_engine) as session:
            assert runs_to_enqueue(session, now=clock.now) == []
            assert claim_run(session, run_id, now=clock.now) is None
    assert lease_of(db_engine, Run, run_id) == clock.now + RUN_LEASE

    keeper.release_run(run_id)  # its worker is gone: nobody renews any more
    clock.now += RUN_LEASE + timedelta(seconds=1)
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=clock.now) == [run_id]
        taken = claim_run(session, run_id, now=clock.now)
    assert taken is not None and taken.attempt == 2


def test_a_stale_holder_does_not_renew_the_new_holders_claim(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    clock = Clock(now)
    stale = keeper_on(db_engine, clock)
    with unit_of_work(db_engine) as session:
        first = claim_run(session, run_id, now=now)
    assert first is not None
    stale.hold_run(first.id, first.attempt)  # a worker stalled past its lease
    clock.now += RUN_LEASE + timedelta(seconds=1)
    with unit_of_work(db_engine) as session:
        second = claim_run(session, run_id, now=clock.now)
    assert second is not None and second.attempt == 2
    granted = lease_of(db_engine, Run, run_id)
    clock.now += timedelta(seconds=5)
    stale.renew()
    stale.release_run(run_id)
    assert lease_of(db_engine, Run, run_id) == granted


def test_a_renewed_delivery_keeps_its_claim_and_moves_its_fence(world: World) -> None:
    world.channel("file", {"directory": "out"})
    world.stories(1)
    [delivery_id] = world.plan()
    keeper = keeper_on(world.engine, world.clock)
    with unit_of_work(world.engine) as session:
        claim = claim_delivery(session, delivery_id, now=world.clock())
    assert claim is not None
    keeper.hold_delivery(claim.id, claim.attempt, claim.lease_until)
    for _ in range(RENEWALS):
        world.clock.now += DELIVERY_LEASE / RENEWALS_PER_LEASE
        keeper.renew()
        with unit_of_work(world.engine) as session:
            assert deliveries_to_enqueue(session, now=world.clock()) == []
            assert claim_delivery(session, delivery_id, now=world.clock()) is None
    fence = keeper.release_delivery(delivery_id)
    assert fence == world.clock() + DELIVERY_LEASE == lease_of(world.engine, Delivery, delivery_id)


def test_a_send_outlasting_its_lease_is_recorded_once(world: World) -> None:
    """The receiver answers only after the lease was renewed twice (as a slow receiver
    would while the keeper's thread renews): the delivery is recorded sent, once."""
    keeper = keeper_on(world.engine, world.clock)

    def slow_receiver(conn: RawConnection) -> None:
        for _ in range(2):
            world.clock.now += DELIVERY_LEASE / RENEWALS_PER_LEASE
            keeper.renew()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with LocalHTTPServer(raw={"/hook": slow_receiver}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id, keeper=keeper)
    assert result.outcome is not None and result.outcome.kind == "sent"
    row = world.row(delivery_id)
    assert (row.state, row.attempts, row.leaseUntil) == ("sent", 1, None)
    assert keeper.held() == (set(), set())
