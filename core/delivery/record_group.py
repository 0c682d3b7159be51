"""Records of sent deliveries a worker process's threads write at the same time, made in
one statement (:mod:`core.delivery.gathering`).

Only sends that went out cleanly and leave their channel's health as it is are gathered
(:func:`~core.delivery.record.gatherable`): each under its own claim's fence, with its
attempt row, its stories' and search's marks and its organization's usage count, as
its own record would write them (:func:`~core.delivery.record.record_sent_together`).
Every other outcome is recorded by its own thread. Should the shared statement fail,
each thread records alone (the one that ran it on a new connection if it lost its own).
PostgreSQL only.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from core.delivery.claims import ChannelTarget, ClaimedDelivery
from core.delivery.gathering import Gathering
from core.delivery.outcome import Outcome
from core.delivery.record import SentRecord, gatherable, record_outcome, record_sent_together

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Record:
    sent: SentRecord
    channel: ChannelTarget
    now: datetime


class RecordGroup(Gathering[_Record, datetime]):
    """Sent records of one process's threads gathered into shared statements."""

    def record(
        self,
        conn: Connection,
        claim: ClaimedDelivery,
        channel: ChannelTarget,
        outcome: Outcome,
        *,
        now: datetime,
        rng: random.Random | None = None,
        started_at: datetime | None = None,
        duration_ms: int | None = None,
    ) -> datetime | None:
        """:func:`~core.delivery.record.record_outcome` on ``conn`` (no transaction
        open), gathered with the records other threads write meanwhile when it may be."""
        if conn.dialect.name != "postgresql" or not gatherable(claim, channel, outcome):
            return record_outcome(
                conn,
                claim,
                channel,
                outcome,
                now=now,
                rng=rng,
                started_at=started_at,
                duration_ms=duration_ms,
            )
        sent = SentRecord(claim, outcome, started_at or now, duration_ms)
        return self.ask(conn, _Record(sent, channel, now))

    def key(self, item: _Record) -> str:
        return item.sent.claim.id

    def alone(self, conn: Connection, item: _Record) -> datetime | None:
        sent = item.sent
        return record_outcome(
            conn,
            sent.claim,
            item.channel,
            sent.outcome,
            now=item.now,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
        )

    def together(self, conn: Connection, items: Sequence[_Record]) -> dict[str, datetime | None]:
        """All recorded in one statement, at the first's time (a sent record is never
        retried: each answer is None). A lost connection is raised in this thread; any
        other refusal (a deadlock with another process's records) leaves each alone."""
        try:
            record_sent_together(conn, [item.sent for item in items], now=items[0].now)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.warning("group record refused; its deliveries are recorded alone", exc_info=True)
            return {}
        return {self.key(item): None for item in items}
