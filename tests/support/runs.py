"""One run of a search through the real ingest phases at a fixed time, without the actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core.db.session import unit_of_work
from core.fetch import GuardedClient
from core.ingest.step import fetch_sources, find_stories
from core.scheduling.fire import database_now, fire_due_schedules
from core.scheduling.runs import claim_run, create_manual_run
from tests.support.factories import due_schedule


def ingest_at(
    engine: Engine, organization_id: str, news_id: str, client: GuardedClient, now: datetime
) -> dict[str, Any]:
    """Claim a manual run at ``now``, fetch its sources (committing as the actor does),
    then find stories in one transaction; returns the merged statistics."""
    with unit_of_work(engine) as session:
        run_id, _ = create_manual_run(session, organization_id, news_id, now=now)
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    fetched = fetch_sources(engine, claimed, now, client)
    with unit_of_work(engine) as session:
        return {**fetched, **find_stories(session, claimed, now)}


def one_queued_run(engine: Engine) -> tuple[str, datetime]:
    """A scheduled run, committed; returns its id and the database time it was made."""
    with unit_of_work(engine) as session:
        due_schedule(session)
    with unit_of_work(engine) as session:
        now = database_now(session)
        run_ids, _ = fire_due_schedules(session, now=now)
    return run_ids[0], now
