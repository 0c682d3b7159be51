"""Publication dates a reader can trust: misread feed dates and dates in the future are
replaced by the fetch time, and the entry says so (``entries.dateIssue``).

feedparser reads RFC 822 and W3C-DTF exactly. Anything else reaches its ISO 8601
fallback, which matches a prefix and fills what it did not find from today's date:
``2020/1/10 14:33:00`` becomes 2020-12-01 when read in December (the year matched, the
month taken from the clock). Such a date is checked against its obvious reading
(python-dateutil, month-first and day-first): a different day, or no complete reading at
all where the fallback read it, is a misread. Both parse paths read dates with
feedparser's own parser, so both get the same verdict.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from dateutil import parser as dateutil_parser
from feedparser.datetimes.iso8601 import _parse_date_iso8601
from feedparser.datetimes.rfc822 import timezone_names

#: A date this far past the fetch time is taken as wrong (clock or time-zone mistakes of
#: a day stay; an event announced for next month is no publication date).
MAX_FUTURE_SKEW = timedelta(days=1)
#: Layouts feedparser reads exactly: RFC 822 (``Fri, 10 Jan 2020 14:33:00 GMT``, weekday
#: optional) and W3C-DTF (``2020``, ``2020-01``, ``2020-01-10``, ``2020-01-10T14:33Z``).
_STANDARD = re.compile(
    r"\s*(?:(?:[A-Za-z]{3,9},?\s+)?\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{2,4}(?:\s|$)"
    r"|\d{4}(?:-\d{2}(?:-\d{2})?)?(?:[Tt\s]|$))"
)
#: Two defaults for fields a string lacks: a reading that differs between them is not
#: complete (dateutil filled a field), so it is no obvious reading.
_DEFAULTS = (datetime(2001, 1, 1), datetime(2002, 2, 2))
#: A date written year first (``2020/1/10``): read month-first only.
_YEAR_FIRST = re.compile(r"\s*\d{4}\D")
#: Time-zone names feedparser knows, with its offsets, so both readings agree on them.
_ZONES = {name.upper(): hours * 3600 for name, hours in timezone_names.items()}


def _zone(name: str | None, _offset: int | None) -> int | None:
    """dateutil's ``tzinfos`` hook: feedparser's offset of a zone name, else naive (UTC)."""
    return _ZONES.get((name or "").upper())


def _obvious_readings(text: str) -> dict[date, date]:
    """Complete readings of ``text``: UTC day -> the day as written. Month-first, and
    day-first unless the year comes first (nobody writes year/day/month)."""
    readings: dict[date, date] = {}
    for dayfirst in (False, True) if not _YEAR_FIRST.match(text) else (False,):
        moments = []
        for default in _DEFAULTS:
            try:
                moments.append(
                    dateutil_parser.parse(text, default=default, dayfirst=dayfirst, tzinfos=_zone)
                )
            except (ValueError, OverflowError):
                break
        if len(moments) == len(_DEFAULTS) and moments[0] == moments[1]:
            moment = moments[0]
            utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            readings[utc.date()] = moment.date()
    return readings


def _fallback_read(text: str) -> bool:
    """Whether feedparser's ISO 8601 fallback gives a date for ``text``."""
    try:
        return bool(_parse_date_iso8601(text))
    except (KeyError, OverflowError, ValueError, AttributeError):
        return False


def check_feed_date(
    text: str | None, parsed: datetime | None
) -> tuple[datetime | None, str | None]:
    """``parsed`` (feedparser's reading of ``text``), or ``None`` and why it was misread."""
    if parsed is None or not text or _STANDARD.match(text):
        return parsed, None
    shown = " ".join(text.split())[:80]
    obvious = _obvious_readings(text)
    if parsed.date() in obvious:
        return parsed, None
    if obvious:
        reading = " or ".join(sorted({day.isoformat() for day in obvious.values()}))
        return None, f"feed date {shown!r} read as {parsed.date()}, obviously {reading}"
    if _fallback_read(text):
        return None, f"feed date {shown!r} read as {parsed.date()}, but has no clear reading"
    return parsed, None


def settle_date(
    published: datetime | None, issue: str | None, fetched_at: datetime
) -> tuple[datetime | None, str | None]:
    """The publication time to store and why it is the fetch time, if it is: a misread
    date (``issue``) or one more than :data:`MAX_FUTURE_SKEW` after ``fetched_at``."""
    if issue is not None:
        return fetched_at, issue
    if published is not None and published > fetched_at + MAX_FUTURE_SKEW:
        ahead = (published - fetched_at).days
        return fetched_at, f"feed date {published.isoformat()} lies {ahead} day(s) in the future"
    return published, None
