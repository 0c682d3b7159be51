"""Throwaway databases: a PostgreSQL database per test run, SQLite files per test."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from core.db.base import Base
from core.db.migrate import upgrade
from core.db.session import make_engine
from tests.support.services import PG_ADMIN_URL


@contextmanager
def fresh_pg_database(
    migrate: bool = True, name: str | None = None, admin_url: str = PG_ADMIN_URL
) -> Iterator[str]:
    """Create a new PostgreSQL database on ``admin_url``'s server (migrated unless told
    not to); drop it after. A given ``name`` replaces a database of that name left by an
    earlier run."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if name is not None:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        name = name or f"newsmon_test_{secrets.token_hex(6)}"
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def migrated_sqlite_template(directory: Path) -> Path:
    """Migrate a SQLite file once; tests copy it instead of migrating again."""
    path = directory / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / f"newsmon-{secrets.token_hex(4)}.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def truncate_all(engine: Engine) -> None:
    """Empty every table (PostgreSQL), so tests sharing one database start clean."""
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
