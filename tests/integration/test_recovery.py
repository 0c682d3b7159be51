"""Recovery in seconds: a broker that lost its data is noticed at the next tick, and an
outage of the database is logged once, not per tick."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import timedelta

import pytest
import redis
from sqlalchemy import Engine, insert

from core.config import Settings
from core.db.models import Run
from core.db.outage import Outage
from core.db.session import make_engine, unit_of_work
from core.ids import new_id
from core.scheduling.fire import database_now
from core.scheduling.runs import SWEEP_BATCH_SIZE
from core.secrets import generate_key_string
from scheduler.loop import Scheduler
from tests.support import factories
from workers.broker import broker_lost_data, build_broker


class Sent:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, run_ids: list[str]) -> None:
        self.ids.extend(run_ids)


def _queued_runs(engine: Engine, count: int, enqueued_ago: timedelta) -> set[str]:
    """``count`` runs enqueued ``enqueued_ago`` (well within the normal requeue wait)."""
    with unit_of_work(engine) as session:
        search = factories.news(session, factories.org(session, "lost"))
        now = database_now(session)
        rows = [
            {
                "id": new_id(),
                "organizationId": search.organizationId,
                "newsId": search.id,
                "scheduledFor": now,
                "state": "queued",
                "trigger": "catchup",
                "enqueuedAt": now - enqueued_ago,
            }
            for _ in range(count)
        ]
        session.execute(insert(Run), rows)
    return {str(row["id"]) for row in rows}


def test_broker_epoch_key_tells_when_redis_lost_its_data(redis_url: str):
    broker = build_broker(
        Settings(broker_url=redis_url, encryption_keys=_key(), database_url=_pg()),
        namespace="epoch-test",
    )
    try:
        assert broker_lost_data(broker)  # a fresh Redis: nothing known about what it held
        assert not broker_lost_data(broker)
        redis.Redis.from_url(redis_url).flushdb()  # Redis restarted without persistence
        assert broker_lost_data(broker)
        assert not broker_lost_data(broker)
    finally:
        broker.close()


def test_runs_the_broker_lost_are_sent_again_at_the_next_tick(db_engine: Engine):
    lost = _queued_runs(db_engine, SWEEP_BATCH_SIZE + 5, enqueued_ago=timedelta(minutes=1))
    sent = Sent()
    scheduler = Scheduler(db_engine, sent, broker_lost=lambda: True)
    scheduler.step(sweep=False)  # not a sweep tick: the lost broker alone triggers it
    assert set(sent.ids) == lost and len(sent.ids) == len(lost)  # each once, every batch
    quiet = Scheduler(db_engine, Sent(), broker_lost=lambda: False)
    assert quiet.sweep() == 0  # just re-enqueued: nothing is lost now


def test_without_a_lost_broker_recent_runs_wait_for_the_requeue_timer(db_engine: Engine):
    _queued_runs(db_engine, 3, enqueued_ago=timedelta(minutes=1))
    sent = Sent()
    Scheduler(db_engine, sent, broker_lost=lambda: False).step(sweep=True)
    assert sent.ids == []


def test_a_database_outage_is_logged_once_not_per_tick(caplog: pytest.LogCaptureFixture):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none")
    scheduler = Scheduler(engine, Sent())
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="scheduler.loop")
    ticks = threading.Timer(1.0, stop.set)
    ticks.start()
    scheduler.run_forever(stop, interval_s=0.05)  # ~20 failing ticks
    records = [r for r in caplog.records if r.name == "scheduler.loop"]
    assert [r.getMessage().split(":")[0] for r in records] == ["dependency unavailable, retrying"]
    assert all(r.exc_info is None for r in records)  # no traceback
    engine.dispose()


def test_outage_end_is_logged_once(caplog: pytest.LogCaptureFixture):
    log = logging.getLogger("outage-test")
    caplog.set_level(logging.INFO, logger="outage-test")
    outage = Outage(log)
    outage.ended()  # nothing ongoing: silent
    for _ in range(3):
        outage.started(ConnectionError("refused"))
    outage.ended()
    outage.ended()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0] == "dependency unavailable, retrying: refused"
    assert messages[1].startswith("dependency available again after")


def _key() -> str:
    return generate_key_string()


def _pg() -> str:
    return "postgresql://postgres@127.0.0.1:5432/test"
