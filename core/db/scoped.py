"""Fetching one row of an organization by id: the one tenant-scoped lookup."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.base import Base
from core.errors import NotFound

T = TypeVar("T", bound=Base)


def get_owned(session: Session, model: type[T], organization_id: str, row_id: str, what: str) -> T:
    """The ``model`` row ``row_id`` of ``organization_id``; another organization's row is
    as absent as a missing one (``NotFound("no such <what>")``, never a hint it exists)."""
    table: Any = model  # every tenant table has ``organizationId`` and ``id``
    row = session.scalar(
        select(model).where(table.organizationId == organization_id, table.id == row_id)
    )
    if row is None:
        raise NotFound(f"no such {what}")
    return row
