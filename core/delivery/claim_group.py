"""Claims a worker process's threads ask for at the same time, made in one statement.

A run enqueues its deliveries one per message, so a burst of runs reaches a worker as
many messages at once, each on a thread of its own, each claiming one delivery: one
statement, one commit and one trip through SQLAlchemy and psycopg per delivery. A
:class:`ClaimGroup` gathers them, as a database gathers commits: the first thread to ask
claims at once, alone (nothing is ever held back waiting for company); threads asking
while a claim is in progress wait for it to end, and the first of them then claims for
all of them in one statement (:func:`~core.delivery.claims.claim_batch_and_load`, on its
own connection). Each thread sends its delivery as soon as it has its answer, so a
claimed delivery is never left waiting for a send: that is what makes claiming any
channel type together safe (a batch of a backlog claims only webhooks ahead of time).

A delivery the group's statement did not claim (not due, already done, locked by
another transaction, or abandoned by a dead worker) is claimed by its own thread as
before, so the answers are the ones a claim of its own would give. PostgreSQL only:
elsewhere every thread claims alone.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from core.db.outage import OUTAGE_ERRORS
from core.delivery.claims import (
    DELIVERY_LEASE,
    LoadedDelivery,
    claim_and_load,
    claim_batch_and_load,
)

log = logging.getLogger(__name__)

#: Most deliveries one statement claims for the group.
MAX_GROUP = 20


@dataclass
class _Ask:
    """One thread's claim, waiting for the group."""

    delivery_id: str
    answered: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this thread claims for the group next
    loaded: LoadedDelivery | None = None
    settled: bool = False  # ``loaded`` is the answer (None: nothing to claim)


class ClaimGroup:
    """Claims of one process's threads gathered into shared statements (see above)."""

    def __init__(self, *, limit: int = MAX_GROUP) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Ask] = []
        self._claiming = False

    @property
    def waiting(self) -> int:
        """Claims asked for that no statement has begun on yet."""
        with self._lock:
            return len(self._waiting)

    def claim(
        self,
        conn: Connection,
        delivery_id: str,
        *,
        now: datetime,
        lease: timedelta = DELIVERY_LEASE,
    ) -> LoadedDelivery | None:
        """:func:`~core.delivery.claims.claim_and_load` of ``delivery_id`` on ``conn``
        (no transaction open), gathered with the claims other threads ask for meanwhile."""
        if conn.dialect.name != "postgresql" or not isinstance(delivery_id, str):
            # A member that is not an id (a corrupted message) fails alone.
            return claim_and_load(conn, delivery_id, now=now, lease=lease)
        ask = _Ask(delivery_id)
        with self._lock:
            self._waiting.append(ask)
            ask.lead = not self._claiming
            self._claiming = True
        if not ask.lead:
            ask.answered.wait()
        if ask.lead:
            self._claim_for_group(conn, now=now, lease=lease)
        if ask.settled or ask.loaded is not None:
            return ask.loaded
        return claim_and_load(conn, delivery_id, now=now, lease=lease)

    def _claim_for_group(self, conn: Connection, *, now: datetime, lease: timedelta) -> None:
        """Claim for the threads waiting now (this one first), answer them, and hand the
        next claim to the first thread that came meanwhile. What the statement raises is
        raised in this thread, as its own claim's would be; the others then claim alone."""
        with self._lock:
            group = self._waiting[: self._limit]
            del self._waiting[: self._limit]
        try:
            if len(group) == 1:  # alone: its own claim, abandoned ones too
                group[0].loaded = claim_and_load(conn, group[0].delivery_id, now=now, lease=lease)
                group[0].settled = True
                return
            ids = [ask.delivery_id for ask in group]
            try:
                loaded = claim_batch_and_load(conn, ids, now=now, lease=lease, webhooks_only=False)
            except Exception as exc:
                # Raised in this thread, whose connection may be the one lost; the others
                # claim alone, on theirs.
                if not isinstance(exc, OUTAGE_ERRORS):
                    log.warning("group claim refused; its deliveries are claimed alone")
                raise
            for ask in group:
                ask.loaded = loaded.get(ask.delivery_id)
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].answered.set()
                else:
                    self._claiming = False
            for ask in group:
                ask.answered.set()
