"""Heartbeat-renewed leases: a worker process keeps the claims it holds alive.

A claim's lease is short (seconds, not minutes), so the sweeper finds a dead worker's
runs and deliveries soon after it died. While the worker is alive, one thread per process
renews the leases of everything it holds in one short transaction per table every
``lease / RENEWALS_PER_LEASE``: a run or send slower than the lease is never taken over,
and no transaction stays open across the work's own I/O.

A delivery's ``leaseUntil`` is part of its fencing token, so the keeper remembers the
lease each renewal set and hands the current one back on release; renewals and releases
share one lock, so an outcome is never recorded under a lease a renewal just moved.

Should renewals fail for a whole lease (the database unreachable), the work may be taken
over once it is back; the fences still let only one holder record its outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.clock import utcnow
from core.db.outage import OUTAGE_ERRORS, Outage
from core.db.session import unit_of_work
from core.delivery.claims import renew_delivery_leases
from core.scheduling.runs import renew_run_leases

log = logging.getLogger(__name__)

#: Renewals per lease: two may fail (a database hiccup) before a live claim expires.
RENEWALS_PER_LEASE = 3


class LeaseKeeper:
    """Renews the leases of the runs and deliveries this process holds.

    Parameters:
      engine: the database of the runs and deliveries.
      run_lease / delivery_lease: what one renewal grants (the claims' own lease).
      clock: the worker's clock, as used by the claims.

    The renewing thread starts with the first item held and ends when nothing is held.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        run_lease: timedelta,
        delivery_lease: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.run_lease = run_lease
        self.delivery_lease = delivery_lease
        self.clock = clock
        #: Seconds between two renewals.
        self.every = min(run_lease, delivery_lease).total_seconds() / RENEWALS_PER_LEASE
        self._lock = threading.Lock()
        self._runs: dict[str, int] = {}
        self._deliveries: dict[str, tuple[int, datetime]] = {}
        self._thread: threading.Thread | None = None
        self._outage = Outage(log)

    def hold_run(self, run_id: str, attempt: int) -> None:
        """Renew the lease of this claim of ``run_id`` until :meth:`release_run`."""
        with self._lock:
            self._runs[run_id] = attempt
            self._ensure_thread()

    def release_run(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def hold_delivery(self, delivery_id: str, attempt: int, lease_until: datetime) -> None:
        """Renew the lease of this claim of ``delivery_id`` until :meth:`release_delivery`."""
        with self._lock:
            self._deliveries[delivery_id] = (attempt, lease_until)
            self._ensure_thread()

    def release_delivery(self, delivery_id: str) -> datetime:
        """Stop renewing; returns the claim's current ``leaseUntil`` (its fence)."""
        with self._lock:
            return self._deliveries.pop(delivery_id)[1]

    def held(self) -> tuple[set[str], set[str]]:
        """Ids of the runs and the deliveries held now."""
        with self._lock:
            return set(self._runs), set(self._deliveries)

    def renew(self) -> None:
        """One renewal of everything held (the thread calls this; so can tests)."""
        with self._lock:
            now = self.clock()
            runs = list(self._runs.items())
            deliveries = [(i, a, until) for i, (a, until) in self._deliveries.items()]
            if runs:
                with unit_of_work(self.engine) as session:
                    renew_run_leases(session, runs, now=now, lease=self.run_lease)
            if deliveries:
                with unit_of_work(self.engine) as session:
                    renewed = renew_delivery_leases(
                        session, deliveries, now=now, lease=self.delivery_lease
                    )
                for delivery_id, until in renewed.items():
                    attempt, _ = self._deliveries[delivery_id]
                    self._deliveries[delivery_id] = (attempt, until)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="newsmon-lease-keeper", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:  # until nothing is held
            time.sleep(self.every)
            with self._lock:
                if not self._runs and not self._deliveries:
                    self._thread = None
                    return
            try:
                self.renew()
                self._outage.ended()
            except OUTAGE_ERRORS as exc:
                self._outage.started(exc)
            except Exception:
                log.exception("lease renewal failed")
