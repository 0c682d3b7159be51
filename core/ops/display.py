"""How the operator page writes times and durations: to the second, in words a person
reads at a glance ("1 min 13 s", "2026-12-03 14:05:09 UTC"), never a raw ``timedelta``
or microseconds. Pure functions of their argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: Units of :func:`duration`, largest first, with their length in seconds.
_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
#: Units a duration is written with at most: "2 d 3 h", not "2 d 3 h 4 min 5 s".
MAX_UNITS = 2


def duration(value: timedelta | None) -> str:
    """``1 min 13 s``, ``2 h 5 min``, ``0 s``; negative durations as ``-…``; None as ""."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())  # to the second, as the page shows times
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    parts: list[str] = []
    for unit, length in _UNITS:
        count, seconds = divmod(seconds, length)
        if count or (parts and len(parts) < MAX_UNITS):
            parts.append(f"{count} {unit}")
        if len(parts) == MAX_UNITS:
            break
    parts = [p for p in parts if not p.startswith("0 ")] or ["0 s"]
    return sign + " ".join(parts)


def moment(value: datetime | None) -> str:
    """``2026-12-03 14:05:09 UTC`` (naive values are UTC, as the database stores them)."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
