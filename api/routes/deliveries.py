"""Deliveries of the organization's digests to its channels, and replay of failed ones."""

# Path and query parameters keep the schema's camelCase names (channelId, newsId).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, request_broker, requires
from api.errors import ERROR_RESPONSES
from api.pagination import MAX_CURSOR_LENGTH, Cursor, Limit, Page, page_of, paginate
from api.schemas import Out
from core.clock import utcnow
from core.db.models import DELIVERY_STATES, Delivery, Digest
from core.delivery.attempts import delivery_attempts
from core.delivery.replay import replay_delivery
from core.errors import NotFound, ValidationError
from workers.broker import BROKER_ERRORS
from workers.deliver import enqueue_deliveries

router = APIRouter(prefix="/deliveries", tags=["deliveries"], responses=ERROR_RESPONSES)


class DeliveryOut(Out):
    """One digest to one channel; ``id`` is also the ``webhook-id`` every attempt carries."""

    id: str
    channelId: str
    digestId: str
    newsId: str
    state: str
    attempts: int
    nextAttemptAt: datetime | None
    lastError: str | None
    lastStatusCode: int | None
    response: str | None
    sentAt: datetime | None
    heldReason: str | None = Field(
        description="why a pending delivery waits: its organization's maxDeliveriesPerDay"
    )
    createdAt: datetime
    updatedAt: datetime


class AttemptOut(Out):
    """One attempt: when it started, what it achieved, the target's answer."""

    id: str
    attempt: int = Field(description="number within the delivery's budget (1 after a replay)")
    outcome: Literal["sent", "failed", "unknown"]
    statusCode: int | None = Field(description="HTTP status, or the SMTP reply code")
    durationMs: int | None = Field(description="the send's duration; null when nothing was sent")
    error: str | None
    response: str | None = Field(description="start of the target's answer, secrets removed")
    startedAt: datetime
    createdAt: datetime


class ReplayStarted(Out):
    id: str
    state: str
    enqueued: bool


Reader = Annotated[TenantContext, requires("deliveries:read")]
Writer = Annotated[TenantContext, requires("deliveries:write")]
IdFilter = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


def _query(organization_id: str) -> Select[Delivery, str]:
    return (
        select(Delivery, Digest.newsId)
        .join(
            Digest,
            (Digest.organizationId == Delivery.organizationId) & (Digest.id == Delivery.digestId),
        )
        .where(Delivery.organizationId == organization_id)
    )


def _out(delivery: Delivery, news_id: str) -> DeliveryOut:
    data: dict[str, Any] = {c: getattr(delivery, c, None) for c in DeliveryOut.model_fields}
    data["newsId"] = news_id
    return DeliveryOut.model_validate(data)


def _delivery(session: Session, organization_id: str, delivery_id: str) -> DeliveryOut:
    row = session.execute(_query(organization_id).where(Delivery.id == delivery_id)).first()
    if row is None:
        raise NotFound("no such delivery")
    return _out(*row)


@router.get("")
def list_deliveries(
    ctx: Reader,
    session: SessionDep,
    state: Annotated[str | None, Query(json_schema_extra={"enum": list(DELIVERY_STATES)})] = None,
    channelId: IdFilter = None,
    newsId: IdFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The organization's deliveries, newest first."""
    query = _query(ctx.organization_id)
    if state is not None:
        if state not in DELIVERY_STATES:
            raise ValidationError(f"must be one of {', '.join(DELIVERY_STATES)}", field="state")
        query = query.where(Delivery.state == state)
    if channelId is not None:
        query = query.where(Delivery.channelId == channelId)
    if newsId is not None:
        query = query.where(Digest.newsId == newsId)
    rows = session.execute(paginate(query, Delivery.id, cursor, limit)).all()
    return page_of([_out(*r) for r in rows], [r[0].id for r in rows], limit)


@router.get("/{deliveryId}")
def read_delivery(deliveryId: str, ctx: Reader, session: SessionDep) -> DeliveryOut:
    return _delivery(session, ctx.organization_id, deliveryId)


@router.get("/{deliveryId}/attempts")
def list_attempts(deliveryId: str, ctx: Reader, session: SessionDep) -> list[AttemptOut]:
    """Every attempt of the delivery, oldest first (at most the newest 200)."""
    return [
        AttemptOut.model_validate(a)
        for a in delivery_attempts(session, ctx.organization_id, deliveryId)
    ]


@router.post("/{deliveryId}/replay", status_code=202)
def replay(deliveryId: str, request: Request, ctx: Writer, session: SessionDep) -> ReplayStarted:
    """Send a failed (or unknown) delivery again with a fresh attempt budget; it keeps its
    id, so a webhook receiver sees the same ``webhook-id``; 409 for one that was sent or is
    still pending or sending.

    The row is committed as pending first; if the queue is unreachable the sweeper sends
    it later (``enqueued: false``)."""
    replay_delivery(session, ctx.organization_id, deliveryId, now=utcnow())
    ctx.audit(session, "delivery.replay", "delivery", deliveryId)
    return ReplayStarted(
        id=deliveryId, state="pending", enqueued=commit_and_enqueue(request, session, deliveryId)
    )


def commit_and_enqueue(request: Request, session: Session, delivery_id: str) -> bool:
    """Commit the replayed row, then enqueue its delivery; False when the queue is
    unreachable (the sweeper sends it later)."""
    session.commit()
    try:
        enqueue_deliveries(request_broker(request), [delivery_id])
    except BROKER_ERRORS:
        return False
    return True
