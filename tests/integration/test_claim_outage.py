"""Row 71 with a real worker on the real Redis and PostgreSQL: the database unreachable
when a worker takes a run or delivery message (a proxy in front of PostgreSQL refuses
connections) is a retry with backoff that completes once the database is back, never a
dead letter. And a dead letter whose run the sweeper completed since shows as resolved."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine, select

from core.db.models import DeliveryAttempt, Run
from core.db.session import WORKER_ENGINE_OPTIONS, make_engine, unit_of_work
from core.delivery.deliveries import deliver, deliver_in_turn
from core.scheduling.fire import database_now, fire_due_schedules
from scheduler.loop import Scheduler
from tests.support import steps
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    SECRET,
    World,
    redis_broker,
    world_fixture,
)
from tests.support.factories import due_schedule
from tests.support.http_server import LocalHTTPServer, Request, Response
from tests.support.runs import one_queued_run
from tests.support.tcp_proxy import TcpProxy
from workers.broker import DELIVER_QUEUE, FETCH_QUEUE
from workers.dead_letters import list_dead_letters, purge_resolved, resolve_dead_letters
from workers.deliver import declare_deliver_actor, enqueue_deliveries
from workers.runs import declare_run_actor, enqueue_runs

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

#: Seconds any wait of this file may take.
WAIT_S = 20.0
#: Failed claims seen before the database comes back (the first try and a retry).
FAILED_CLAIMS = 2


@pytest.fixture
def db_engine(pg_engine: Engine) -> Engine:
    """The delivery world on PostgreSQL only (the outage is a proxy in front of it)."""
    return pg_engine


@pytest.fixture
def broker(redis_url: str, pg_engine: Engine) -> Iterator[dramatiq.Broker]:
    with redis_broker(
        pg_engine, redis_url, "newsmon-outage", min_backoff_ms=100, max_backoff_ms=400
    ) as built:
        yield built


@pytest.fixture
def proxy(pg_engine: Engine) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", pg_engine.url.port or 5432)) as running:
        yield running


@pytest.fixture
def proxied(pg_engine: Engine, proxy: TcpProxy) -> Iterator[Engine]:
    """The test database as the worker reaches it: through the proxy."""
    engine = make_engine(pg_engine.url.set(port=proxy.port).render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_worker(broker: dramatiq.Broker) -> dramatiq.Worker:
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    return worker


def logged(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def test_a_run_claimed_while_the_database_is_down_is_retried_not_dead_lettered(
    pg_engine: Engine,
    proxied: Engine,
    proxy: TcpProxy,
    broker: dramatiq.Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="workers.runs")
    run_id, _ = one_queued_run(pg_engine)
    declare_run_actor(broker, proxied, steps.record_step)
    proxy.down()
    enqueue_runs(broker, [run_id])
    worker = run_worker(broker)
    try:
        wait_for(
            lambda: logged(caplog, "not claimed, the database is unavailable") >= FAILED_CLAIMS,
            "a retried claim",
        )
        proxy.up()

        def state() -> str:
            with unit_of_work(pg_engine) as session:
                return session.get_one(Run, run_id).state

        wait_for(lambda: state() == "succeeded", "the run to succeed")
    finally:
        worker.stop()
    assert list_dead_letters(broker, FETCH_QUEUE) == []
    assert steps.executions(pg_engine, run_id) == 1


def test_a_worker_engine_without_pre_ping_retries_a_claim_on_a_cut_connection(
    pg_engine: Engine,
    proxy: TcpProxy,
    broker: dramatiq.Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker's pool does not ping before each checkout: a pooled connection the
    database dropped (restart) fails the next claim, which is a retry, and the run
    succeeds on a new connection; nothing is dead-lettered."""
    caplog.set_level(logging.WARNING, logger="workers.runs")
    url = pg_engine.url.set(port=proxy.port).render_as_string(hide_password=False)
    engine = make_engine(url, **WORKER_ENGINE_OPTIONS, pool_size=1, max_overflow=0)
    first, _ = one_queued_run(pg_engine)
    declare_run_actor(broker, engine, steps.record_step)
    worker = run_worker(broker)
    try:

        def state(run_id: str) -> str:
            with unit_of_work(pg_engine) as session:
                return session.get_one(Run, run_id).state

        enqueue_runs(broker, [first])
        wait_for(lambda: state(first) == "succeeded", "the first run")
        proxy.down()  # cuts the pooled connection, as a database restart does
        proxy.up()
        with unit_of_work(pg_engine) as session:
            due_schedule(session, "second")
        with unit_of_work(pg_engine) as session:
            [second], _ = fire_due_schedules(session, now=database_now(session))
        enqueue_runs(broker, [second])
        wait_for(lambda: state(second) == "succeeded", "the second run")
    finally:
        worker.stop()
        engine.dispose()
    assert logged(caplog, "not claimed, the database is unavailable") == 1
    assert list_dead_letters(broker, FETCH_QUEUE) == []
    assert steps.executions(pg_engine, second) == 1


def test_a_delivery_claimed_while_the_database_is_down_is_retried_not_dead_lettered(
    world: World,
    proxied: Engine,
    proxy: TcpProxy,
    broker: dramatiq.Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="workers.deliver")
    world.channel("file", {"directory": "out"})
    world.stories(1)
    [delivery_id] = world.plan()
    declare_deliver_actor(broker, proxied, lambda: world.ctx)
    proxy.down()
    enqueue_deliveries(broker, [delivery_id])
    worker = run_worker(broker)
    try:
        wait_for(
            lambda: logged(caplog, "the database is unavailable; will retry") >= FAILED_CLAIMS,
            "a retried claim",
        )
        proxy.up()
        wait_for(lambda: world.row(delivery_id).state == "sent", "the delivery to be sent")
    finally:
        worker.stop()
    assert list_dead_letters(broker, DELIVER_QUEUE) == []
    assert world.row(delivery_id).attempts == 1


def test_a_connection_cut_during_the_send_records_the_outcome_on_a_new_one(
    world: World, proxied: Engine, proxy: TcpProxy
) -> None:
    """The claim's connection, kept for the record, is cut while the webhook is being
    sent (the database went away and came back): the outcome is recorded, once."""

    def cut_then_answer(_: Request) -> Response:
        proxy.down()
        proxy.up()
        return Response()

    with LocalHTTPServer(routes={"/hook": cut_then_answer}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = deliver(proxied, delivery_id, world.ctx, clock=world.clock)
        assert server.hits["/hook"] == 1
    assert result.outcome is not None and result.outcome.kind == "sent"
    row = world.row(delivery_id)
    assert (row.state, row.attempts) == ("sent", 1)
    with unit_of_work(world.engine) as session:
        outcomes = session.scalars(
            select(DeliveryAttempt.outcome).where(DeliveryAttempt.deliveryId == delivery_id)
        ).all()
    assert outcomes == ["sent"]


def test_a_connection_cut_during_a_batch_leaves_the_next_delivery_a_working_one(
    world: World, proxied: Engine, proxy: TcpProxy
) -> None:
    """The batch's shared connection is cut during its first send: that outcome is
    recorded on a new connection, and the second delivery is claimed, sent and recorded
    on the batch's connection, reconnected."""
    cuts: list[int] = []

    def cut_once_then_answer(_: Request) -> Response:
        if not cuts:
            cuts.append(1)
            proxy.down()
            proxy.up()
        return Response()

    with LocalHTTPServer(routes={"/hook": cut_once_then_answer}) as server:
        for _ in range(2):
            world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        ids = world.plan()
        done = dict(
            deliver_in_turn(proxied, ids, world.ctx, budget=timedelta(minutes=1), clock=world.clock)
        )
        assert server.hits["/hook"] == 2
    assert sorted(done) == sorted(ids)
    for delivery_id in ids:
        outcome = done[delivery_id].outcome
        assert outcome is not None and outcome.kind == "sent"
        row = world.row(delivery_id)
        assert (row.state, row.attempts) == ("sent", 1)


def test_a_dead_letter_whose_run_completed_since_is_resolved(
    pg_engine: Engine, broker: dramatiq.Broker
) -> None:
    """The first attempt outlives the actor's time limit (dead-lettered, its run left
    running); after the lease the sweeper sends the run again and it succeeds."""
    run_id, _ = one_queued_run(pg_engine)
    lease = timedelta(seconds=1)
    declare_run_actor(
        broker,
        pg_engine,
        steps.blocking_step,
        lease=lease,
        time_limit=timedelta(milliseconds=200),
    )
    enqueue_runs(broker, [run_id])
    worker = run_worker(broker)
    try:
        wait_for(lambda: len(list_dead_letters(broker, FETCH_QUEUE)) == 1, "a dead letter")
        with unit_of_work(pg_engine) as session:
            [letter] = resolve_dead_letters(session, list_dead_letters(broker, FETCH_QUEUE))
        assert letter.args == (run_id,) and letter.resolved is None  # still to be done
        time.sleep(lease.total_seconds() + 0.2)  # no renewals (no keeper): the lease ends
        sweeper = Scheduler(pg_engine, partial(enqueue_runs, broker))
        assert sweeper.sweep() == 1
        wait_for(lambda: _state(pg_engine, run_id) == "succeeded", "the swept run")
    finally:
        worker.stop()
    with unit_of_work(pg_engine) as session:
        [letter] = resolve_dead_letters(session, list_dead_letters(broker, FETCH_QUEUE))
        assert letter.resolved == "run succeeded"
        assert letter.as_dict()["resolved"] == "run succeeded"
        assert purge_resolved(broker, FETCH_QUEUE, session) == 1
    assert list_dead_letters(broker, FETCH_QUEUE) == []


def _state(engine: Engine, run_id: str) -> Any:
    with unit_of_work(engine) as session:
        return session.scalar(select(Run.state).where(Run.id == run_id))
