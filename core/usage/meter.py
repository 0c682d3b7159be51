"""Counting API requests per organization and month without a write per request.

The key check already costs every request one ``UPDATE`` of its key row; a second write
to a shared ``usage`` row would add a round trip and make an organization's concurrent
requests queue on that row's lock. So each web process counts accepted requests in
memory (:class:`RequestMeter`: a dict under a lock, about a microsecond) and adds them to
``usage`` in one batched upsert every ``NEWSMON_USAGE_FLUSH_SECONDS``
(:class:`MeterFlusher`), and once more when it stops. Counts are additive, so any number
of web processes flush into the same rows. A flush the database refuses keeps its counts
for the next one; a process killed without a clean stop loses at most one interval of
counts (Redis was not used for this: it keeps nothing on disk here, and embedded mode has
none). ``GET /usage`` flushes its own process first, so a client reading its usage sees
its own requests.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS, Outage
from core.usage.counters import add_api_requests
from core.usage.months import month_of

log = logging.getLogger(__name__)


class RequestMeter:
    """Accepted API requests per ``(organizationId, month)`` not yet in the database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def count(self, organization_id: str, now: datetime) -> None:
        """Count one request of ``organization_id`` in ``now``'s month."""
        month = month_of(now)
        with self._lock:
            self._counts[organization_id, month] += 1

    def pending(self) -> int:
        """Requests counted here and not flushed yet."""
        with self._lock:
            return sum(self._counts.values())

    def flush(self, engine: Engine, now: datetime) -> int:
        """Add what was counted to ``usage`` in one transaction; returns how many requests.
        On failure the counts are kept for the next flush and the error raised."""
        with self._lock:
            taken, self._counts = self._counts, Counter()
        if not taken:
            return 0
        try:
            with engine.begin() as conn:
                add_api_requests(conn, ((org, month, n) for (org, month), n in taken.items()), now)
        except BaseException:
            with self._lock:
                self._counts.update(taken)
            raise
        return sum(taken.values())


class MeterFlusher:
    """A daemon thread flushing a :class:`RequestMeter` every ``interval_s`` seconds.

    Parameters:
      meter: what to flush.
      engine: the database of ``usage``.
      interval_s: seconds between flushes.
      clock: stamps ``updatedAt`` (the months come from when requests were counted).
    """

    def __init__(
        self,
        meter: RequestMeter,
        engine: Engine,
        interval_s: float,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.meter = meter
        self.engine = engine
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = Outage(log)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="usage-meter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and flush what is left (logged, not raised, if that fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._flush_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._flush_once()

    def _flush_once(self) -> None:
        try:
            self.meter.flush(self.engine, self.clock())
        except OUTAGE_ERRORS as exc:
            self._outage.started(exc)
            return
        except Exception:
            log.exception("usage: API request counts could not be stored; kept for later")
            return
        self._outage.ended()
