"""``newsmon delivery``: failed deliveries of every organization, and their replay (the
operator's ``/operator/deliveries`` routes from the shell)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import load, migrated_engine
from core.clock import utcnow
from core.db.session import unit_of_work

delivery_app = typer.Typer(
    help="Failed deliveries of every organization, and their replay.", no_args_is_help=True
)

#: Who the audit log names for a replay from the shell (no operator key is involved).
CLI_ACTOR = "cli"


@delivery_app.command("failed")
def delivery_failed(
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Newest first, at most this many.")
    ] = 100,
) -> None:
    """Print failed and unknown deliveries, newest first, one JSON object per line."""
    from core.delivery.replay import failed_deliveries

    with unit_of_work(migrated_engine(load())) as session:
        found = failed_deliveries(session, limit=limit)
    for item in found:
        row = item.delivery
        typer.echo(
            json.dumps(
                {
                    "id": row.id,
                    "organization": item.organization_slug,
                    "channel": item.channel_name,
                    "channelType": item.channel_type,
                    "state": row.state,
                    "attempts": row.attempts,
                    "lastError": row.lastError,
                    "updatedAt": row.updatedAt.isoformat(),
                }
            )
        )


@delivery_app.command("replay")
def delivery_replay(
    delivery_id: Annotated[str, typer.Argument(help="The failed or unknown delivery's id.")],
) -> None:
    """Put a failed or unknown delivery back to pending with a fresh attempt budget,
    audited in its organization's log; with a broker it is enqueued at once, else the
    running system's sweeper sends it."""
    from core.delivery.replay import replay_for_operator

    settings = load()
    with unit_of_work(migrated_engine(settings)) as session:
        replay_for_operator(
            session, delivery_id, operator_id=CLI_ACTOR, request_id=None, now=utcnow()
        )
    enqueued = False
    if settings.mode == "production":
        from cli.processes import broker_for
        from workers.broker import BROKER_ERRORS
        from workers.deliver import enqueue_deliveries

        try:
            enqueue_deliveries(broker_for(settings), [delivery_id])
            enqueued = True
        except BROKER_ERRORS as exc:
            # The replay is committed; the sweeper sends it once the queue is back.
            typer.echo(f"warning: not enqueued ({exc}); the sweeper will send it", err=True)
    typer.echo(json.dumps({"id": delivery_id, "state": "pending", "enqueued": enqueued}))
