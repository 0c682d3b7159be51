"""Statements compiled once and run on the database driver's own cursor.

A delivery runs two statements of its own, its claim and its record. SQLAlchemy's
execution of each (its execution context, the processing of every parameter, the
metadata of every result) cost as much Python as psycopg's: 0.18 ms against 0.09 ms for
a 31-column claim. A :class:`DriverStatement` is compiled by SQLAlchemy once per
dialect and then runs on the driver's cursor with the statement's own type processing
(an aware UTC datetime in and out, JSON wrapped for psycopg). A driver error is raised
as SQLAlchemy raises it, and a lost connection invalidates the connection (and the
pool) as ``Connection.execute`` would.

Only for autocommitted statements (:func:`core.db.session.autocommitted`): SQLAlchemy
does not see these statements, so they must not begin a transaction it does not know of.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass
class _Compiled:
    sql: str
    #: Values of the statement's literal parameters, processed.
    defaults: dict[str, Any]
    #: Names of the parameters a caller must give.
    required: frozenset[str]
    binds: dict[str, Processor]
    row: Any  # the named tuple class of a result row
    types: tuple[Any, ...]  # each result column's SQLAlchemy type
    #: Each processed result column's index and processor: known once the driver has
    #: described the result (numeric processors depend on the column's database type).
    results: tuple[tuple[int, Processor], ...] | None = None


class DriverStatement:
    """``statement`` (a SELECT, possibly with data-modifying CTEs), run on the driver's
    cursor of an autocommitted connection; rows are named tuples, as SQLAlchemy's rows
    are read (by attribute)."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every result row of the statement with ``params``."""
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None:
            compiled = self._compiled[conn.dialect.name] = _compile(self.statement, conn.dialect)
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            raise RuntimeError("a driver statement runs only on an autocommitted connection")
        missing = compiled.required.difference(params)
        if missing:
            raise ValueError(f"values are required for parameters {sorted(missing)}")
        args = dict(compiled.defaults)
        for name, value in params.items():
            process = compiled.binds.get(name)
            args[name] = value if process is None or value is None else process(value)
        # Listeners of the cursor events (tracing, statement counts) see these too; the
        # flags are SQLAlchemy's own shortcut past its event dispatch.
        events = conn._has_events or conn.engine._has_events
        cursor = None
        try:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            if events:
                conn.dispatch.before_cursor_execute(conn, cursor, compiled.sql, args, None, False)
            cursor.execute(compiled.sql, args)
            if events:
                conn.dispatch.after_cursor_execute(conn, cursor, compiled.sql, args, None, False)
            raw = cursor.fetchall()
            if compiled.results is None:
                compiled.results = _result_processors(compiled, conn.dialect, cursor.description)
            cursor.close()
        except conn.dialect.loaded_dbapi.Error as exc:
            # SQLAlchemy's own handling: wraps the error, tells a lost connection, and
            # invalidates this connection and the pool's older ones if so.
            conn._handle_dbapi_exception(exc, compiled.sql, args, cursor, None)
        make, results = compiled.row._make, compiled.results
        if not results:
            return [make(row) for row in raw]
        rows = []
        for row in raw:
            values = list(row)
            for index, process in results:
                if values[index] is not None:
                    values[index] = process(values[index])
            rows.append(make(values))
        return rows

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The one value of the statement's one row."""
        [row] = self.rows(conn, params)
        return row[0]


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if "__[POSTCOMPILE_" in compiled.string:
        raise ValueError("a driver statement cannot expand parameters (IN lists)")
    if compiled.insert_prefetch or compiled.update_prefetch:
        # SQLAlchemy computes these (``onupdate=utcnow``) as it executes a statement.
        names = [column.name for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        raise ValueError(f"a driver statement must set the columns {names} itself")
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    binds: dict[str, Processor] = {}
    for bind in compiled.binds.values():
        name = compiled.bind_names[bind]
        if compiled.escaped_bind_names.get(name, name) != name:
            raise ValueError(f"parameter {name!r} needs escaping")
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind.required:
            required.add(name)
            if process is not None:
                binds[name] = process
        else:
            value = bind.effective_value
            defaults[name] = value if process is None or value is None else process(value)
    columns = list(statement.selected_columns)
    # An unnamed column (count(*)) is read by position: its field is renamed ``_<n>``.
    row = namedtuple("Row", [str(column.key) for column in columns], rename=True)  # type: ignore[misc]
    types = tuple(column.type for column in columns)
    return _Compiled(compiled.string, defaults, frozenset(required), binds, row, types)


def _result_processors(
    compiled: _Compiled, dialect: Dialect, description: Any
) -> tuple[tuple[int, Processor], ...]:
    if len(description) != len(compiled.types):
        raise RuntimeError("the statement's result columns are not the ones it selects")
    return tuple(
        (index, process)
        for index, (type_, column) in enumerate(zip(compiled.types, description, strict=True))
        if (process := type_.dialect_impl(dialect).result_processor(dialect, column[1]))
    )
