"""Queue depths on the in-process broker (embedded mode): a message waiting to be
retried counts as delayed while the worker holds it, until it is due."""

from __future__ import annotations

import threading
import time

import dramatiq
from dramatiq.brokers.stub import StubBroker

from workers.broker import FETCH_QUEUE
from workers.queue_depths import queue_depths


def _depth(broker: StubBroker):
    return next(d for d in queue_depths(broker) if d.queue == FETCH_QUEUE)


def test_a_message_waiting_to_retry_counts_as_delayed_until_it_runs() -> None:
    broker = StubBroker()
    broker.emit_after("process_boot")
    ran = threading.Event()

    @dramatiq.actor(broker=broker, queue_name=FETCH_QUEUE)
    def step() -> None:
        ran.set()

    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        step.send_with_options(delay=1500)  # as a retry's backoff sends it
        deadline = time.monotonic() + 1.0
        while broker.queues[f"{FETCH_QUEUE}.DQ"].qsize() and time.monotonic() < deadline:
            time.sleep(0.02)
        # The worker has taken the message off the delay queue and holds it until due.
        assert broker.queues[f"{FETCH_QUEUE}.DQ"].qsize() == 0
        assert not ran.is_set()
        assert _depth(broker).delayed == 1
        assert ran.wait(5)
        broker.join(FETCH_QUEUE)
        worker.join()
        assert _depth(broker).delayed == 0
    finally:
        worker.stop()
