"""Statements a worker process's threads need at the same time, made once for all.

A run enqueues its deliveries one per message, so a burst of runs reaches a worker as
many messages at once, each on a thread of its own, each claiming and then recording one
delivery: one statement, one commit and one trip through SQLAlchemy and psycopg each. A
:class:`Gathering` gathers them as a database gathers commits: the first thread to ask
runs its statement at once, alone (nothing is ever held back waiting for company);
threads asking while a statement is in progress wait for it to end, and the first of
them then runs one statement for all of them, on its own connection, and answers them.
Threads whose item that statement did not settle run their own, as they would alone,
and so does a thread whose item another thread asked for in the same statement (a
delivery in two messages at once): only the first of them gets its answer.
Subclasses: :class:`~core.delivery.claim_group.ClaimGroup` and
:class:`~core.delivery.record_group.RecordGroup`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Connection

#: Most items one statement serves.
MAX_GATHERED = 20

Item = TypeVar("Item")
Answer = TypeVar("Answer")


def _taken() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Ask(Generic[Item, Answer]):
    """One thread's item, waiting for the gathering."""

    item: Item
    #: Released when the thread may go on (answered, or to lead): a lock, not an Event,
    #: whose Python-level condition cost a few percent of a delivery's CPU.
    answered: threading.Lock = field(default_factory=_taken)
    lead: bool = False  # this thread runs the next statement
    answer: Answer | None = None
    settled: bool = False  # ``answer`` is the answer


class Gathering(Generic[Item, Answer]):
    """Items of one process's threads gathered into shared statements (see above).

    Subclasses say how one item is answered alone (:meth:`alone`) and how several are
    together (:meth:`together`: the answers it settles, by :meth:`key`; what it raises
    is raised in the thread that ran it, and the others then go alone)."""

    def __init__(self, *, limit: int = MAX_GATHERED) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Ask[Item, Answer]] = []
        self._running = False

    @property
    def waiting(self) -> int:
        """Items asked for that no statement has begun on yet."""
        with self._lock:
            return len(self._waiting)

    def key(self, item: Item) -> str:
        raise NotImplementedError

    def alone(self, conn: Connection, item: Item) -> Answer | None:
        raise NotImplementedError

    def together(self, conn: Connection, items: Sequence[Item]) -> dict[str, Answer | None]:
        raise NotImplementedError

    def ask(self, conn: Connection, item: Item) -> Answer | None:
        """``item``'s answer, gathered with what other threads ask for meanwhile; ``conn``
        (no transaction open) runs the statement if this thread leads."""
        mine: _Ask[Item, Answer] = _Ask(item)
        with self._lock:
            self._waiting.append(mine)
            mine.lead = not self._running
            self._running = True
        if not mine.lead:
            mine.answered.acquire()
        if mine.lead:
            self._run(conn)
        if mine.settled:
            return mine.answer
        return self.alone(conn, item)

    def _run(self, conn: Connection) -> None:
        """Answer the threads waiting now (this one first), then hand the next statement
        to the first thread that came meanwhile."""
        with self._lock:
            group = self._waiting[: self._limit]
            del self._waiting[: self._limit]
        try:
            if len(group) == 1:
                group[0].answer = self.alone(conn, group[0].item)
                group[0].settled = True
                return
            firsts: dict[str, _Ask[Item, Answer]] = {}
            for ask in group:
                firsts.setdefault(self.key(ask.item), ask)
            answers = self.together(conn, [ask.item for ask in firsts.values()])
            # An item asked twice at once (a delivery in two messages) is answered once:
            # the first asker gets the claim, the other goes alone and finds it taken.
            for key, ask in firsts.items():
                if key in answers:
                    ask.answer, ask.settled = answers[key], True
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].answered.release()
                else:
                    self._running = False
            for ask in group[1:]:  # the first is this thread's own
                ask.answered.release()
