"""Telling an outage of the database or broker from a bug, and logging it once.

A loop that retries every few seconds while PostgreSQL restarts should not write a
traceback per attempt: :class:`Outage` logs one warning when a dependency stops
answering and one line when it answers again, with how long it was gone.
"""

from __future__ import annotations

import logging
import time

import redis
from sqlalchemy.exc import DBAPIError, OperationalError

from core.errors import DatabaseUnavailable

#: Errors that mean "a dependency is unreachable", not "a bug": the loop retries them.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DatabaseUnavailable,
    redis.ConnectionError,
    redis.TimeoutError,
)


def _reason(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    text = str(orig or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Outage:
    """Log the start and the end of an outage, once each.

    Parameters:
      logger: where the two lines go.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def started(self, exc: BaseException) -> None:
        """A dependency failed; logs only the first failure of an outage."""
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning("dependency unavailable, retrying: %s", _reason(exc))

    def ended(self) -> None:
        """A pass succeeded; logs the end of an outage if one was ongoing."""
        if self._since is not None:
            self._log.warning(
                "dependency available again after %.0f s", time.monotonic() - self._since
            )
            self._since = None
