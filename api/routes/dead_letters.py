"""Operator routes for dead-lettered messages: list, replay, purge (per queue)."""

# Path parameters keep camelCase names like the rest of the API.
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from api.deps import OperatorDep, SessionDep, request_broker
from api.errors import ERROR_RESPONSES, ApiError
from api.schemas import Out
from core.errors import NotFound, ValidationError
from workers.broker import BROKER_ERRORS, QUEUES
from workers.dead_letters import (
    MAX_LISTED,
    dead_letter_queues,
    list_dead_letters,
    purge_dead_letters,
    purge_resolved,
    replay_dead_letter,
    resolve_dead_letters,
)

router = APIRouter(prefix="/operator/dead-letters", tags=["operator"], responses=ERROR_RESPONSES)

#: A queue whose dead letters are kept.
Queue = Annotated[str, Path(json_schema_extra={"enum": sorted(QUEUES)})]


class DeadLetterOut(Out):
    queue: str
    messageId: str
    actor: str
    args: list[Any]
    failedAt: datetime | None
    retries: int
    traceback: str | None
    resolved: str | None = Field(
        description="Why no replay is needed (e.g. `run succeeded`: the sweeper ran it "
        "again); null while its run or delivery is unfinished or cannot be looked up."
    )


class Purged(Out):
    purged: int


def _broker(request: Request) -> Any:
    try:
        return request_broker(request)
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None


def _queue(request: Request, queue: str) -> Any:
    broker = _broker(request)
    if queue not in dead_letter_queues(broker):
        raise ValidationError(
            f"unknown queue (one of {', '.join(dead_letter_queues(broker))})", field="queue"
        )
    return broker


@router.get("/{queue}", responses={503: {"description": "queue unreachable"}})
def list_letters(
    queue: Queue,
    op: OperatorDep,
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = MAX_LISTED,
) -> list[DeadLetterOut]:
    """Dead letters of ``queue``, newest first; ``resolved`` says which need no replay."""
    broker = _queue(request, queue)
    try:
        letters = list_dead_letters(broker, queue, limit=limit)
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None
    letters = resolve_dead_letters(session, letters)
    return [
        DeadLetterOut(
            queue=d.queue,
            messageId=d.message_id,
            actor=d.actor,
            args=list(d.args),
            failedAt=d.failed_at,
            retries=d.retries,
            traceback=d.traceback,
            resolved=d.resolved,
        )
        for d in letters
    ]


@router.post("/{queue}/{messageId}/replay", status_code=202)
def replay_letter(
    queue: Queue, messageId: str, op: OperatorDep, request: Request, session: SessionDep
) -> dict[str, str]:
    """Enqueue a dead-lettered message again with fresh retries."""
    broker = _queue(request, queue)
    try:
        replayed = replay_dead_letter(broker, queue, messageId)
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None
    if not replayed:
        raise NotFound("no such dead letter (already replayed or purged?)")
    op.audit(
        session,
        None,
        action="deadletter.replay",
        target_type="message",
        target_id=messageId,
        details={"queue": queue},
    )
    return {"queue": queue, "messageId": messageId, "status": "replayed"}


@router.delete("/{queue}")
def purge_letters(
    queue: Queue,
    op: OperatorDep,
    request: Request,
    *,
    session: SessionDep,
    messageId: Annotated[str | None, Query(max_length=64)] = None,
    resolved: Annotated[
        bool, Query(description="Only the dead letters whose run or delivery completed.")
    ] = False,
) -> Purged:
    """Drop the dead letters of ``queue`` (one, with ``messageId``; only settled ones,
    with ``resolved``: both together drop that one if it is settled)."""
    broker = _queue(request, queue)
    try:
        if resolved:
            purged = purge_resolved(broker, queue, session, messageId)
        else:
            purged = purge_dead_letters(broker, queue, messageId)
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None
    op.audit(
        session,
        None,
        action="deadletter.purge",
        target_type="queue",
        target_id=queue,
        details={"messageId": messageId, "resolved": resolved, "purged": purged},
    )
    return Purged(purged=purged)
