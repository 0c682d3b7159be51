"""``newsmon health scheduler|worker``: the liveness check of a container (exit 0 when
the process's heartbeat is fresh, 1 when it is missing or stale)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer

from cli.common import load
from core.clock import utcnow
from core.ops.heartbeat import DEFAULT_MAX_AGE, check, heartbeat_path


class Kind(StrEnum):
    scheduler = "scheduler"
    worker = "worker"


def health(
    kind: Annotated[Kind, typer.Argument(help="The process to check: scheduler or worker.")],
    max_age: Annotated[
        float | None,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Oldest heartbeat still healthy [default: scheduler 120, worker 60].",
        ),
    ] = None,
) -> None:
    """Exit 0 if the scheduler or worker on this machine beat recently, else 1 (one line)."""
    settings = load()
    limit = timedelta(seconds=max_age) if max_age else DEFAULT_MAX_AGE[kind.value]
    result = check(heartbeat_path(settings.data_dir, kind.value), kind.value, limit, utcnow())
    typer.echo(result.message, err=not result.healthy)
    raise typer.Exit(0 if result.healthy else 1)
