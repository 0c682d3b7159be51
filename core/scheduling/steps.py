"""What a run does once claimed: step functions, so the pipeline is testable on its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from core.errors import FetchError, NewsmonError
from core.scheduling.runs import ClaimedRun

#: A run step: does the run's work in the given transaction and returns its statistics.
RunStep = Callable[[Session, ClaimedRun, datetime], dict[str, Any]]
#: Work of a run before its transaction, with none open (network I/O): it commits what
#: it records in short transactions of its own and returns statistics for the run.
FetchStep = Callable[[Engine, ClaimedRun, datetime], dict[str, Any]]


@dataclass(frozen=True)
class RunPhases:
    """What a claimed run does, in two phases; their statistics are merged.

    Parameters:
      step: in the run's transaction, committed together with the run's outcome.
      fetch: before it, with no transaction open; what it commits stands even when the
        step fails (a source's fetch outcome is a fact about the source, not the run).
    """

    step: RunStep
    fetch: FetchStep | None = None


def as_phases(work: RunStep | RunPhases) -> RunPhases:
    """``work`` as phases (a plain step has no fetch phase)."""
    return work if isinstance(work, RunPhases) else RunPhases(step=work)


#: Longest error text kept on a run or schedule.
MAX_ERROR_TEXT = 2000


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: connection trouble, timeouts, fetch errors; not bad input or bugs
    of the data (a ``NewsmonError`` other than ``FetchError`` is permanent)."""
    if isinstance(exc, OperationalError | TimeoutError | ConnectionError | FetchError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return not isinstance(exc, NewsmonError)


def describe_error(exc: BaseException, *, transient: bool) -> dict[str, Any]:
    """The JSON recorded on a run and its schedule (``errorDetails``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {
        "error": f"{type(exc).__name__}: {text}"[:MAX_ERROR_TEXT],
        "permanent": not transient,
    }
