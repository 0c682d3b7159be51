"""Cursor pagination over time-ordered ids (newest first) and the page shape of lists."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

#: Items per page unless ``limit`` says otherwise.
DEFAULT_PAGE_SIZE = 50
#: Most items one page may hold.
MAX_PAGE_SIZE = 200
#: Longest cursor accepted (an id).
MAX_CURSOR_LENGTH = 64

T = TypeVar("T")
#: Any select statement, whatever its columns.
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="nextCursor of the previous page"),
]


class Page(BaseModel, Generic[T]):
    """One page of a list; ``nextCursor`` is null on the last page."""

    items: list[T]
    nextCursor: str | None = None


def paginate(query: S, id_column: InstrumentedAttribute[str], cursor: str | None, limit: int) -> S:
    """Newest first, after ``cursor``; one extra row tells whether a next page exists."""
    if cursor:
        query = query.where(id_column < cursor)
    return query.order_by(id_column.desc()).limit(limit + 1)


def page_of(items: list[T], ids: list[str], limit: int) -> Page[T]:
    """Cut the extra row of :func:`paginate` and set ``nextCursor``."""
    if len(items) > limit:
        return Page(items=items[:limit], nextCursor=ids[limit - 1])
    return Page(items=items)
