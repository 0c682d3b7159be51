"""Wall-clock access in one place, so pure code takes ``now`` and tests can pass any."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
