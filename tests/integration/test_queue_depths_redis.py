"""Queue depths on Redis: a delayed message counts until it is due, also while a worker
holds it (dramatiq's consumer takes it off the delay queue at once)."""

from __future__ import annotations

import threading
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name

from workers.broker import FETCH_QUEUE
from workers.queue_depths import QueueDepth, queue_depths


def _depth(broker: RedisBroker) -> QueueDepth:
    return next(d for d in queue_depths(broker) if d.queue == FETCH_QUEUE)


def test_a_delayed_message_a_worker_holds_counts_until_it_runs(redis_url: str) -> None:
    broker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    broker.emit_after("process_boot")
    ran = threading.Event()

    @dramatiq.actor(broker=broker, queue_name=FETCH_QUEUE)
    def step() -> None:
        ran.set()

    step.send_with_options(delay=3000)  # as a retry's backoff, or a deferred refresh
    assert _depth(broker).delayed == 1  # on the delay queue, no worker yet
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        delay_queue = f"{broker.namespace}:{dq_name(FETCH_QUEUE)}"
        deadline = time.monotonic() + 2.0
        while broker.client.llen(delay_queue) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert broker.client.llen(delay_queue) == 0  # taken: the worker holds it
        assert not ran.is_set()
        assert _depth(broker).delayed == 1
        assert ran.wait(10)
        broker.join(FETCH_QUEUE)
        worker.join()
        assert _depth(broker).delayed == 0
    finally:
        worker.stop()
        broker.close()
