"""Threads asking a gathering (core/delivery/gathering.py) at the same time, on real
PostgreSQL: a first asker held up inside its statement by a row lock, the others queued
behind it in order, and the statements that ran."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event, select, text

from core.db.models import Delivery
from core.delivery.gathering import Gathering
from tests.support.dead_letter_world import wait_until


class Asker(threading.Thread):
    """A worker thread running ``ask`` on a connection of its own (its backend pid known
    once started); keeps the answer or the error."""

    def __init__(self, engine: Engine, ask: Callable[[Connection], Any]) -> None:
        super().__init__(daemon=True)
        self.engine, self.ask = engine, ask
        self.connected = threading.Event()
        self.backend_pid = 0
        self.answer: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.engine.connect() as conn:
                self.backend_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                conn.rollback()
                self.connected.set()
                self.answer = self.ask(conn)
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()

    def started(self) -> Asker:
        self.start()
        self.connected.wait(10)
        return self


def waits_for_a_lock(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        event_type = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return bool(event_type == "Lock")


@contextmanager
def held_up(engine: Engine, delivery_id: str, ask: Callable[[Connection], Any]) -> Iterator[Asker]:
    """A first asker whose statement waits for a lock another transaction holds on
    ``delivery_id``'s row until the block ends (its gathering is busy meanwhile); yields
    it, then waits for it to finish."""
    with engine.connect() as holder:
        holder.execute(select(Delivery.id).where(Delivery.id == delivery_id).with_for_update())
        leader = Asker(engine, ask).started()
        wait_until(lambda: waits_for_a_lock(engine, leader.backend_pid))
        yield leader
        holder.rollback()
    leader.join(10)


def queued(
    engine: Engine, gathering: Gathering[Any, Any], asks: list[Callable[[Connection], Any]]
) -> list[Asker]:
    """An asker for each of ``asks``, each started once the one before waits for the
    gathering (so they are gathered in this order)."""
    askers: list[Asker] = []
    for ask in asks:
        askers.append(Asker(engine, ask).started())
        wait_until(lambda: gathering.waiting == len(askers))
    return askers


@contextmanager
def statements_with(engine: Engine, needle: str) -> Iterator[list[str]]:
    """The statements holding ``needle`` run on ``engine`` while the block runs."""
    seen: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if needle in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
