"""``newsmon dlq``: dead-lettered messages of the production broker."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import engine_for, load
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
    """Print the dead letters of a queue, one JSON object per line (``resolved`` names
    those whose run or delivery completed since)."""
    from core.db.outage import OUTAGE_ERRORS
    from core.db.session import unit_of_work
    from workers.dead_letters import SETTLED, list_dead_letters, resolve_dead_letters

    letters = list_dead_letters(_dlq_broker(), queue, limit=limit)
    if any(letter.actor in SETTLED for letter in letters):
        try:
            with unit_of_work(engine_for(load())) as session:
                letters = resolve_dead_letters(session, letters)
        except OUTAGE_ERRORS as exc:  # the dead letters matter most during an outage
            typer.echo(f"warning: not marked resolved, database unavailable: {exc}", err=True)
    for letter in letters:
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
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Only those whose run or delivery completed.")
    ] = False,
) -> None:
    """Drop the dead letters of a queue (or one of them, or the resolved ones)."""
    from core.db.session import unit_of_work
    from workers.dead_letters import purge_dead_letters, purge_resolved

    if resolved and message_id is not None:
        raise typer.BadParameter("give --message-id or --resolved, not both")
    if resolved:
        with unit_of_work(engine_for(load())) as session:
            count = purge_resolved(_dlq_broker(), queue, session)
    else:
        count = purge_dead_letters(_dlq_broker(), queue, message_id)
    typer.echo(json.dumps({"purged": count, "queue": queue}))
