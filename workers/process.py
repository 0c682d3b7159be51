"""Running dramatiq workers inside a newsmon process (worker command or embedded run)."""

from __future__ import annotations

import logging
import threading

import dramatiq

log = logging.getLogger(__name__)

#: Milliseconds a stopping worker waits for in-flight messages to finish.
STOP_TIMEOUT_MS = 30_000


def run_worker(broker: dramatiq.Broker, threads: int, stop: threading.Event) -> None:
    """Consume every declared queue with ``threads`` threads until ``stop`` is set.

    Stopping lets in-flight messages finish (unfinished ones return to the queue or
    are recovered by the sweeper through their run's lease).
    """
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    log.info("worker started: %d threads on %s", threads, sorted(broker.get_declared_queues()))
    try:
        stop.wait()
    finally:
        worker.stop(timeout=STOP_TIMEOUT_MS)
        broker.close()
        log.info("worker stopped")
