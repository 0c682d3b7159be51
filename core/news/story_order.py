"""The order in which stories are listed: newest first, the same on every page.

Newest means found last; stories found in the same run (one ``foundAt``) come by
publication time, newest first (a story without one counts as published when found), and
ties by id, descending, so the order is total and a cursor never skips or repeats a story.
The cursor stays a story id: the page after it starts below that story's sort key.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from core.db.models import Story

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

#: When a story counts as published: its feed's date, else when it was found.
_PUBLISHED = func.coalesce(Story.publishedAt, Story.foundAt)
#: The sort key, compared as a whole (a row value, in PostgreSQL and SQLite alike).
_sort_key = tuple_(Story.foundAt, _PUBLISHED, Story.id)


def newest_first(
    session: Session, organization_id: str, query: S, cursor: str | None, limit: int
) -> S:
    """``query`` over stories of ``organization_id`` in list order, after the story
    ``cursor`` (a story id), one extra row telling whether a next page exists."""
    if cursor:
        after = session.execute(
            select(Story.foundAt, _PUBLISHED, Story.id).where(
                Story.organizationId == organization_id, Story.id == cursor
            )
        ).one_or_none()
        # A cursor story deleted since (retention) still ends the page at its id.
        query = query.where(_sort_key < tuple(after) if after else Story.id < cursor)
    order = (Story.foundAt.desc(), _PUBLISHED.desc(), Story.id.desc())
    return query.order_by(*order).limit(limit + 1)
