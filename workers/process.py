"""Running dramatiq workers inside a newsmon process (worker command or embedded run)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dramatiq

from core.ops.heartbeat import WORKER_BEAT_EVERY_S

log = logging.getLogger(__name__)

#: Milliseconds a stopping worker waits for in-flight messages to finish.
STOP_TIMEOUT_MS = 30_000


def run_worker(
    broker: dramatiq.Broker,
    threads: int,
    stop: threading.Event,
    heartbeat: Callable[[], None] | None = None,
) -> None:
    """Consume every declared queue with ``threads`` threads until ``stop`` is set,
    calling ``heartbeat`` every ``WORKER_BEAT_EVERY_S`` while all of dramatiq's consumer
    and worker threads are alive (a worker that lost them stops beating).

    Stopping lets in-flight messages finish (unfinished ones return to the queue or
    are recovered by the sweeper through their run's lease).
    """
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    log.info("worker started: %d threads on %s", threads, sorted(broker.get_declared_queues()))
    try:
        while True:
            if heartbeat is not None and _threads_alive(worker):
                heartbeat()
            if stop.wait(WORKER_BEAT_EVERY_S):
                break
    finally:
        worker.stop(timeout=STOP_TIMEOUT_MS)
        broker.close()
        log.info("worker stopped")


def _threads_alive(worker: dramatiq.Worker) -> bool:
    threads = [*worker.consumers.values(), *worker.workers]
    return bool(threads) and all(thread.is_alive() for thread in threads)
