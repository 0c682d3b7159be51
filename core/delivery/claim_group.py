"""Claims a worker process's threads ask for at the same time, made in one statement
(:mod:`core.delivery.gathering`).

Each thread sends its delivery as soon as it has its claim, so a claimed delivery is
never left waiting for a send: that is what makes claiming any channel type together
safe (a batch of a backlog claims only webhooks ahead of time). A delivery the shared
statement did not claim (not due, already done, locked by another transaction, or
abandoned by a dead worker) is claimed by its own thread, so the answers are the ones a
claim of its own would give. PostgreSQL only: elsewhere every thread claims alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from core.db.outage import OUTAGE_ERRORS
from core.delivery.claims import (
    DELIVERY_LEASE,
    LoadedDelivery,
    claim_and_load,
    claim_batch_and_load,
)
from core.delivery.gathering import Gathering

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    now: datetime
    lease: timedelta


class ClaimGroup(Gathering[_Claim, LoadedDelivery]):
    """Claims of one process's threads gathered into shared statements (see above)."""

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
        return self.ask(conn, _Claim(delivery_id, now, lease))

    def key(self, item: _Claim) -> str:
        return item.delivery_id

    def alone(self, conn: Connection, item: _Claim) -> LoadedDelivery | None:
        return claim_and_load(conn, item.delivery_id, now=item.now, lease=item.lease)

    def together(
        self, conn: Connection, items: Sequence[_Claim]
    ) -> dict[str, LoadedDelivery | None]:
        """The due ones claimed in one statement, with the first's clock and lease. What
        it raises is raised in this thread, whose connection may be the one lost."""
        first = items[0]
        ids = [item.delivery_id for item in items]
        try:
            loaded = claim_batch_and_load(
                conn, ids, now=first.now, lease=first.lease, webhooks_only=False
            )
        except Exception as exc:
            if not isinstance(exc, OUTAGE_ERRORS):
                log.warning("group claim refused; its deliveries are claimed alone")
            raise
        return dict(loaded)
