"""``newsmon dlq``: dead-lettered messages of the production broker."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import load
from cli.processes import broker_for, require_production
from core.errors import NotFound

if TYPE_CHECKING:
    import dramatiq

dlq_app = typer.Typer(help="Dead-lettered messages (production broker).", no_args_is_help=True)


# --- dlq -----------------------------------------------------------------------------

QueueOption = Annotated[str, typer.Option(help="Queue: fetch (runs), refresh or deliver.")]


def _dlq_broker() -> dramatiq.Broker:
    settings = load()
    require_production(settings, "dlq")
    return broker_for(settings)


@dlq_app.command("list")
def dlq_list(
    queue: QueueOption = "fetch",
    limit: Annotated[int, typer.Option(min=1, help="Newest first, at most this many.")] = 100,
) -> None:
    """Print the dead letters of a queue, one JSON object per line."""
    from workers.dead_letters import list_dead_letters

    for letter in list_dead_letters(_dlq_broker(), queue, limit=limit):
        typer.echo(json.dumps(letter.as_dict()))


@dlq_app.command("replay")
def dlq_replay(
    message_id: Annotated[str, typer.Argument(help="Message id (for runs: the run id).")],
    queue: QueueOption = "fetch",
) -> None:
    """Enqueue a dead-lettered message again and remove it from the dead letters."""
    from workers.dead_letters import replay_dead_letter

    if not replay_dead_letter(_dlq_broker(), queue, message_id):
        raise NotFound(f"no dead letter {message_id} in queue {queue}")
    typer.echo(json.dumps({"replayed": message_id, "queue": queue}))


@dlq_app.command("purge")
def dlq_purge(
    queue: QueueOption = "fetch",
    message_id: Annotated[str | None, typer.Option(help="Only this message.")] = None,
) -> None:
    """Drop the dead letters of a queue (or one of them)."""
    from workers.dead_letters import purge_dead_letters

    count = purge_dead_letters(_dlq_broker(), queue, message_id)
    typer.echo(json.dumps({"purged": count, "queue": queue}))
