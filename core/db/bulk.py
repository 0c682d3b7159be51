"""Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING id, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.base import Base

#: Bound parameters per statement; SQLite allows 32,766 and PostgreSQL 65,535.
MAX_PARAMS_PER_STATEMENT = 30_000


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict: list[str]
) -> list[str]:
    """Insert ``rows`` (uniform keys); rows clashing on the unique ``conflict`` columns
    are skipped. Returns the ids of the rows inserted."""
    if not rows:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    per_chunk = max(1, MAX_PARAMS_PER_STATEMENT // len(rows[0]))
    inserted: list[str] = []
    for start in range(0, len(rows), per_chunk):
        stmt = (
            insert(model)
            .values(list(rows[start : start + per_chunk]))
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(model.__table__.c.id)
        )
        inserted.extend(session.scalars(stmt))
    return inserted
