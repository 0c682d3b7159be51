"""The one engine and session factory, and the unit of work that owns a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.config import get_settings
from core.errors import DatabaseUnavailable

#: Seconds SQLite waits on a locked database before failing (embedded mode has a few threads).
SQLITE_BUSY_TIMEOUT_S = 30
#: Seconds to wait for a PostgreSQL connection before calling the database unreachable.
PG_CONNECT_TIMEOUT_S = 5
#: Pooled connections per process (web, scheduler and worker each have their own).
PG_POOL_SIZE = 10
#: Engine options of a worker process: no ping per pool checkout (a round trip per
#: message). Every actor takes a lost connection as a retry of its message, and the first
#: disconnect recycles the whole pool, so a database restart costs one retry.
WORKER_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": False}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; cascades and same-org checks need them.
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets the web thread read while a worker thread writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with newsmon's per-backend settings."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", PG_POOL_SIZE)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}, **kwargs)


def check_connection(engine: Engine) -> None:
    """Round-trip to the database or raise :class:`DatabaseUnavailable` in one line."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(
            f"NEWSMON_DATABASE_URL: cannot connect to {where}: {reason}"
        ) from None


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine for the configured database."""
    return make_engine(get_settings().sqlalchemy_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Own ``session``'s transaction: commit when the block ends, roll back if it raises,
    close either way."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommitted(conn: Connection) -> Iterator[Connection]:
    """``conn`` in autocommit while the block runs: each statement is its own transaction,
    one round trip (no ``BEGIN``/``COMMIT``); transactional again afterwards, so the
    caller may open a transaction on it. ``conn`` must have no transaction open. Inside
    another such block (a batch keeping its connection in autocommit) it changes nothing;
    :func:`transaction_on` opens a transaction there."""
    if _in_autocommit(conn):
        yield conn
        return
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield conn
    finally:
        if not conn.invalidated:
            # Ends SQLAlchemy's own transaction; in autocommit nothing is sent, nothing undone.
            conn.rollback()
            conn.execution_options(isolation_level=conn.default_isolation_level)


@contextmanager
def transaction_on(conn: Connection) -> Iterator[Connection]:
    """One transaction on ``conn`` (committed at the end of the block, rolled back on an
    error), also inside an :func:`autocommitted` block, whose autocommit it suspends."""
    if not _in_autocommit(conn):
        with conn.begin():
            yield conn
        return
    conn.rollback()  # the marker the autocommitted statements left: nothing is sent
    conn.execution_options(isolation_level=conn.default_isolation_level)
    try:
        with conn.begin():
            yield conn
    finally:
        if not conn.invalidated:
            conn.execution_options(isolation_level="AUTOCOMMIT")


def _in_autocommit(conn: Connection) -> bool:
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def unit_of_work(engine: Engine | None = None) -> AbstractContextManager[Session]:
    """One transaction on ``engine`` (default: the configured database)."""
    # A Session, not a sessionmaker per call: each sessionmaker makes a Session subclass
    # and sets up its event dispatch (measured: ~1 ms of CPU per unit of work).
    return transaction(Session(bind=engine or get_engine(), expire_on_commit=False))
