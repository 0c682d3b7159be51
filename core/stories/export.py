"""Streaming export of an organization's stories as CSV or NDJSON, in constant memory.

Rows come from one read with ``stream_results`` (a server-side cursor on PostgreSQL;
SQLite's cursor steps through the table by itself) in batches of ``EXPORT_BATCH_ROWS``,
and each batch is written out before the next is read, so memory does not grow with the
number of rows (``tests/integration/test_story_export.py`` measures it). Oldest first,
so an export can be resumed with ``since`` set to the last ``foundAt`` seen.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, select

from core.db.models import Story
from core.stories.filters import StoryFilter, story_conditions

#: Rows read and written per batch.
EXPORT_BATCH_ROWS = 1000
#: The export formats.
ExportFormat = Literal["csv", "ndjson"]
#: Content type of each format.
EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
#: The columns of an export, in order.
EXPORT_COLUMNS = (
    "id",
    "newsId",
    "title",
    "url",
    "snippet",
    "sourceName",
    "publishedAt",
    "foundAt",
    "relevanceScore",
    "isFiltered",
    "wasDelivered",
    "clusterId",
    "duplicateOfId",
)
#: Text columns a spreadsheet could read as a formula (CSV only).
_TEXT_COLUMNS = frozenset({"title", "url", "snippet", "sourceName"})
#: First characters that make a spreadsheet evaluate a cell (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_stories(
    engine: Engine,
    organization_id: str,
    story_filter: StoryFilter,
    fmt: ExportFormat,
    *,
    batch_rows: int = EXPORT_BATCH_ROWS,
) -> Iterator[bytes]:
    """The organization's stories matching ``story_filter``, encoded, one chunk a batch.

    Opens its own connection (a response streams after the request's session closed).
    """
    columns = [getattr(Story, name) for name in EXPORT_COLUMNS]
    statement = (
        select(*columns)
        .where(*story_conditions(organization_id, story_filter))
        .order_by(Story.foundAt, Story.id)
    )
    if fmt == "csv":
        yield _csv_lines([list(EXPORT_COLUMNS)])
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
            statement
        )
        for batch in result.partitions():
            if fmt == "csv":
                yield _csv_lines([_csv_row(row) for row in batch])
            else:
                yield "".join(
                    json.dumps(dict(zip(EXPORT_COLUMNS, map(_json_value, row), strict=True))) + "\n"
                    for row in batch
                ).encode("utf-8")


def _csv_lines(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _csv_row(row: Any) -> list[Any]:
    cells = []
    for name, value in zip(EXPORT_COLUMNS, row, strict=True):
        cell = value
        if isinstance(value, datetime):
            cell = value.isoformat()
        elif name in _TEXT_COLUMNS and isinstance(value, str) and value.startswith(_FORMULA_START):
            cell = "'" + value  # shown as text, never run as a formula
        cells.append(cell)
    return cells


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
