"""Operator routes over deliveries of every tenant: the failed ones, their attempts, and
replay (audited in the delivery's organization's log as the operator's act)."""

# Path parameters keep the schema's camelCase names (deliveryId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from api.deps import OperatorDep, SessionDep
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of
from api.routes.deliveries import AttemptOut, ReplayStarted, commit_and_enqueue
from api.schemas import Out
from core.clock import utcnow
from core.delivery.attempts import delivery_attempts
from core.delivery.replay import delivery_organization, failed_deliveries, replay_for_operator

router = APIRouter(prefix="/operator/deliveries", tags=["operator"], responses=ERROR_RESPONSES)


class FailedDeliveryOut(Out):
    """A failed (or unknown) delivery of any tenant; channel secrets are never shown."""

    id: str
    organizationId: str
    organizationSlug: str
    channelId: str
    channelName: str
    channelType: str
    digestId: str
    state: str
    attempts: int
    lastError: str | None
    lastStatusCode: int | None
    updatedAt: datetime


@router.get("/failed")
def list_failed(
    op: OperatorDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[FailedDeliveryOut]:
    """Failed and unknown deliveries of every tenant, newest first."""
    rows = failed_deliveries(session, limit=limit + 1, before_id=cursor)
    items = [
        FailedDeliveryOut(
            id=r.delivery.id,
            organizationId=r.delivery.organizationId,
            organizationSlug=r.organization_slug,
            channelId=r.delivery.channelId,
            channelName=r.channel_name,
            channelType=r.channel_type,
            digestId=r.delivery.digestId,
            state=r.delivery.state,
            attempts=r.delivery.attempts,
            lastError=r.delivery.lastError,
            lastStatusCode=r.delivery.lastStatusCode,
            updatedAt=r.delivery.updatedAt,
        )
        for r in rows
    ]
    return page_of(items, [r.delivery.id for r in rows], limit)


@router.get("/{deliveryId}/attempts")
def list_attempts(deliveryId: str, op: OperatorDep, session: SessionDep) -> list[AttemptOut]:
    """Every attempt of any tenant's delivery, oldest first (at most the newest 200)."""
    organization_id = delivery_organization(session, deliveryId)
    return [
        AttemptOut.model_validate(a)
        for a in delivery_attempts(session, organization_id, deliveryId)
    ]


@router.post("/{deliveryId}/replay", status_code=202)
def replay(
    deliveryId: str, request: Request, op: OperatorDep, session: SessionDep
) -> ReplayStarted:
    """Send a failed (or unknown) delivery again with a fresh attempt budget (same id, so
    the same ``webhook-id``); 409 for one that was sent or is still under way."""
    replay_for_operator(
        session,
        deliveryId,
        operator_id=op.key_id,
        request_id=op.request_id,
        ip_address=op.ip_address,
        now=utcnow(),
    )
    enqueued = commit_and_enqueue(request, session, deliveryId)
    return ReplayStarted(id=deliveryId, state="pending", enqueued=enqueued)
