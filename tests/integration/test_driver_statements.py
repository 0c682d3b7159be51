"""Statements run on the driver's cursor (core/db/driver.py) answer, fail and are seen as
the same statements run by SQLAlchemy are, on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from core.db.base import UTCDateTime
from core.db.driver import DriverStatement
from core.db.models import News
from core.db.session import autocommitted, unit_of_work
from tests.support import factories

_NEWS: Table = News.__table__  # type: ignore[assignment]
_TOUCHED = (
    update(_NEWS)
    .where(_NEWS.c.id == bindparam("news_id"))
    .values(
        lastSent=bindparam("sent", type_=UTCDateTime()),
        name=bindparam("name"),
        updatedAt=bindparam("sent", type_=UTCDateTime()),
    )
    .returning(_NEWS.c.id, _NEWS.c.name, _NEWS.c.lastSent, _NEWS.c.searchQuery)
    .cte("touched")
)
#: A data-modifying CTE with typed parameters, and a result with an aware datetime, a
#: JSON document, a label and an unnamed column.
STATEMENT = select(
    _TOUCHED.c.id,
    _TOUCHED.c.name.label("search_name"),
    _TOUCHED.c.lastSent,
    _TOUCHED.c.searchQuery,
    select(_NEWS.c.createdAt).where(_NEWS.c.id == _TOUCHED.c.id).scalar_subquery(),
)


@pytest.fixture
def searches(pg_engine: Engine) -> list[str]:
    with unit_of_work(pg_engine) as s:
        org = factories.org(s)
        return [
            factories.news(s, org, f"S{i}", searchQuery={"query": f"q{i}", "sources": []}).id
            for i in range(3)
        ]


@pytest.fixture
def conn(pg_engine: Engine) -> Iterator[Connection]:
    with pg_engine.connect() as connection, autocommitted(connection):
        yield connection


def test_rows_are_the_rows_sqlalchemy_gives(conn: Connection, searches: list[str]) -> None:
    """Same columns, names and values: the sent time back as an aware UTC datetime, the
    JSON as a document; and the change is committed (autocommit)."""
    sent = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    expected = conn.execute(STATEMENT, {"news_id": searches[0], "sent": sent, "name": "A"}).one()
    [row] = DriverStatement(STATEMENT).rows(
        conn, {"news_id": searches[1], "sent": sent, "name": "A"}
    )
    assert row._fields[:4] == ("id", "search_name", "lastSent", "searchQuery")
    assert row.search_name == expected.search_name == "A"
    assert row.lastSent == expected.lastSent == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert row.lastSent.tzinfo is UTC
    assert row.searchQuery == {"query": "q1", "sources": []}
    assert isinstance(row[4], datetime) and row[4].tzinfo is UTC
    with unit_of_work(conn.engine) as s:
        assert s.get(News, searches[1]).name == "A"  # type: ignore[union-attr]


def test_parameters_are_checked_as_sqlalchemy_checks_them(
    conn: Connection, searches: list[str]
) -> None:
    statement = DriverStatement(STATEMENT)
    with pytest.raises(ValueError, match=r"required for parameters \['sent'\]"):
        statement.rows(conn, {"news_id": searches[0], "name": "A"})
    with pytest.raises(ValueError, match="naive datetime"):
        statement.rows(conn, {"news_id": searches[0], "sent": datetime(2026, 5, 1), "name": "A"})


def test_a_column_default_computed_in_python_is_refused(
    conn: Connection, searches: list[str]
) -> None:
    """``updatedAt``'s ``onupdate`` is computed by SQLAlchemy as it executes: a statement
    relying on it says so rather than writing NULL."""
    statement = update(_NEWS).values(name="A").returning(_NEWS.c.id).cte("renamed")
    with pytest.raises(ValueError, match=r"must set the columns \['updatedAt'\]"):
        DriverStatement(select(statement.c.id)).rows(conn, {})


def test_runs_only_autocommitted(pg_engine: Engine, searches: list[str]) -> None:
    """Outside autocommit the driver would begin a transaction SQLAlchemy knows nothing of."""
    params = {"news_id": searches[0], "sent": datetime.now(UTC), "name": "A"}
    with pg_engine.connect() as connection, pytest.raises(RuntimeError, match="autocommit"):
        DriverStatement(STATEMENT).rows(connection, params)


def test_a_refused_statement_raises_sqlalchemy_s_error(
    conn: Connection, searches: list[str]
) -> None:
    """The connection stays usable, as after a refused ``execute``."""
    params = {"news_id": searches[0], "sent": datetime.now(UTC), "name": None}
    with pytest.raises(IntegrityError):
        DriverStatement(STATEMENT).rows(conn, params)
    assert not conn.invalidated
    assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_a_lost_connection_is_invalidated_as_sqlalchemy_invalidates_it(
    pg_engine: Engine, conn: Connection, searches: list[str]
) -> None:
    with pg_engine.connect() as admin:
        pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    params = {"news_id": searches[0], "sent": datetime.now(UTC), "name": "A"}
    with pytest.raises(OperationalError) as raised:
        DriverStatement(STATEMENT).rows(conn, params)
    assert raised.value.connection_invalidated
    assert conn.invalidated


def test_cursor_event_listeners_see_the_statement(
    pg_engine: Engine, conn: Connection, searches: list[str]
) -> None:
    seen: list[tuple[str, Any]] = []

    def before(_c: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append(("before", params["news_id"]))

    def after(_c: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append(("after", params["news_id"]))

    event.listen(pg_engine, "before_cursor_execute", before)
    event.listen(pg_engine, "after_cursor_execute", after)
    try:
        DriverStatement(STATEMENT).scalar(
            conn, {"news_id": searches[2], "sent": datetime.now(UTC), "name": "A"}
        )
    finally:
        event.remove(pg_engine, "before_cursor_execute", before)
        event.remove(pg_engine, "after_cursor_execute", after)
    assert seen == [("before", searches[2]), ("after", searches[2])]
