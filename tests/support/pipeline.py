"""Driving the real pipeline on an in-process broker: the scheduler's source tick, "run
now" as the API does it, and waiting until every queue is empty."""

from __future__ import annotations

from functools import partial

import dramatiq
from sqlalchemy import Engine

from core.clock import utcnow
from core.db.session import unit_of_work
from core.scheduling.runs import mark_enqueued, request_run
from scheduler.loop import Scheduler
from workers.broker import QUEUES
from workers.refresh import enqueue_refreshes
from workers.runs import enqueue_runs


def source_tick(engine: Engine, broker: dramatiq.Broker) -> int:
    """The scheduler's source clock once: refreshes of every due source sent."""
    scheduler = Scheduler(
        engine, lambda _ids: None, enqueue_refreshes=partial(enqueue_refreshes, broker)
    )
    return scheduler.refresh_sources()


def run_now(engine: Engine, broker: dramatiq.Broker, organization_id: str, news_id: str) -> str:
    """``POST /news/{newsId}/run``: a run now, and its stale sources refreshed with a
    follow-up run; returns the run id."""
    with unit_of_work(engine) as session:
        asked = request_run(session, organization_id, news_id, now=utcnow())
    enqueue_runs(broker, [asked.run_id])
    with unit_of_work(engine) as session:
        mark_enqueued(session, [asked.run_id])
    enqueue_refreshes(broker, list(asked.refresh_ids), follow_up=[news_id])
    return asked.run_id


def settle(broker: dramatiq.Broker, worker: dramatiq.Worker, rounds: int = 5) -> None:
    """Wait until refreshes, the runs they start and the deliveries those plan are done."""
    for _ in range(rounds):
        for queue in QUEUES:
            broker.join(queue)
        worker.join()
    for queue in QUEUES:
        broker.join(queue)
