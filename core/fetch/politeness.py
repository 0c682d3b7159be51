"""Per-host politeness of one worker process: a concurrency limit and a minimum spacing.

A worker runs several runs in threads; many searches follow feeds of one host (every
Google News query is ``news.google.com``). :class:`HostLimiter` lets at most
``concurrency`` fetches of a host be in flight and starts two of them at least
``interval_s`` apart. It is process-local by design: with N worker processes a host sees
at most N x ``concurrency`` connections, which is polite enough for feed servers and
needs no shared state (a Redis semaphore would add a failure mode to every fetch).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Fetches of one host in flight at once, per process (``NEWSMON_FETCH_HOST_CONCURRENCY``).
DEFAULT_HOST_CONCURRENCY = 2
#: Seconds between the starts of two fetches of one host (``..._HOST_INTERVAL_SECONDS``).
DEFAULT_HOST_INTERVAL_S = 1.0


class HostLimiter:
    """Per-host semaphore plus minimum spacing between request starts.

    Parameters:
      concurrency: fetches of one host in flight at once.
      interval_s: seconds between the starts of two fetches of one host (0: none).
      clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        concurrency: int = DEFAULT_HOST_CONCURRENCY,
        interval_s: float = DEFAULT_HOST_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if concurrency < 1 or interval_s < 0:
            raise ValueError("concurrency must be >= 1 and interval_s >= 0")
        self.concurrency = concurrency
        self.interval_s = interval_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of ``host``'s slots, waiting for a free one and for the spacing."""
        host = host.lower()
        with self._lock:
            semaphore = self._semaphores.get(host)
            if semaphore is None:
                semaphore = self._semaphores[host] = threading.BoundedSemaphore(self.concurrency)
        with semaphore:
            with self._lock:  # reserve a start time; waiters queue up one interval apart
                now = self._clock()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + self.interval_s
            if start > now:
                self._sleep(start - now)
            yield


#: A limiter that never waits (tests and benchmarks of raw throughput).
def unlimited() -> HostLimiter:
    return HostLimiter(concurrency=1_000_000, interval_s=0)
