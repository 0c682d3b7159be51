"""Calendar months (UTC) as usage counts them: ``YYYY-MM`` text, parsed and listed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.errors import ValidationError

#: Longest run of months one usage query lists (two years).
MAX_MONTHS_PER_QUERY = 24

# ASCII digits only (``\d`` takes any Unicode digit), and no trailing newline.
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def month_of(now: datetime) -> str:
    """The UTC month of ``now`` as ``YYYY-MM``."""
    when = now.astimezone(UTC)
    return f"{when.year:04d}-{when.month:02d}"


def parse_month(text: str, field: str = "month") -> str:
    """``text`` if it is a month ``YYYY-MM``; else a ValidationError on ``field``."""
    if not _MONTH.fullmatch(text):
        raise ValidationError("must be a month as YYYY-MM, e.g. 2026-12", field=field)
    return text


def months_between(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last``, both included, oldest first."""
    year, month = int(first[:4]), int(first[5:])
    months = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        months.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def month_range(first: str, last: str) -> list[str]:
    """The months ``first``..``last`` of a query: in order and at most
    ``MAX_MONTHS_PER_QUERY`` of them (a ValidationError names the field otherwise)."""
    parse_month(first, "from")
    parse_month(last, "to")
    if first > last:
        raise ValidationError("must not be before from", field="to")
    span = (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1
    if span > MAX_MONTHS_PER_QUERY:
        raise ValidationError(f"spans more than {MAX_MONTHS_PER_QUERY} months", field="to")
    return months_between(first, last)
