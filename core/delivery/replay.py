"""Replay of deliveries that failed, for tenants and operators, and the operators' list
of failed deliveries across tenants.

A replay puts a ``failed`` or ``unknown`` delivery back to ``pending`` with a fresh
attempt budget; it keeps its id, so a webhook receiver sees the same ``webhook-id``. A
delivery that went out (``sent``), or is still under way (``pending``, ``sending``), is
refused with a :class:`~core.errors.Conflict` saying so; the caller enqueues the
``deliver`` message after its commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Channel, Delivery, Organization
from core.errors import Conflict, NotFound
from core.tenancy.audit import record_audit

#: States a replay starts again from.
REPLAYABLE_STATES = ("failed", "unknown")


def replay_delivery(
    session: Session, organization_id: str, delivery_id: str, *, now: datetime
) -> None:
    """Put the organization's failed or unknown delivery back to pending (attempts 0, due
    now). NotFound for another organization's or no delivery; Conflict for one that was
    sent or is still pending or sending."""
    done = session.execute(
        update(Delivery)
        .where(
            Delivery.organizationId == organization_id,
            Delivery.id == delivery_id,
            Delivery.state.in_(REPLAYABLE_STATES),
        )
        .values(state="pending", attempts=0, nextAttemptAt=now, leaseUntil=None, updatedAt=now)
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        return
    state = session.scalar(
        select(Delivery.state).where(
            Delivery.organizationId == organization_id, Delivery.id == delivery_id
        )
    )
    if state is None:
        raise NotFound("no such delivery")
    if state == "sent":
        raise Conflict(f"delivery {delivery_id} was delivered; there is nothing to replay")
    raise Conflict(f"delivery {delivery_id} is {state}, not failed: it is still under way")


def delivery_organization(session: Session, delivery_id: str) -> str:
    """The organization of a delivery (an operator's lookup, any tenant); NotFound."""
    organization_id = session.scalar(
        select(Delivery.organizationId).where(Delivery.id == delivery_id)
    )
    if organization_id is None:
        raise NotFound("no such delivery")
    return organization_id


def replay_for_operator(
    session: Session,
    delivery_id: str,
    *,
    operator_id: str,
    request_id: str | None,
    ip_address: str | None = None,
    now: datetime,
) -> str:
    """An operator's replay of any tenant's delivery (as :func:`replay_delivery`),
    audited in that organization's log as the operator's act; returns the organization."""
    organization_id = delivery_organization(session, delivery_id)
    replay_delivery(session, organization_id, delivery_id, now=now)
    record_audit(
        session,
        organization_id,
        actor_type="operator",
        actor_id=operator_id,
        action="delivery.replay",
        target_type="delivery",
        target_id=delivery_id,
        request_id=request_id,
        ip_address=ip_address,
    )
    return organization_id


@dataclass(frozen=True)
class FailedDelivery:
    """A failed or unknown delivery, with what an operator needs to judge a replay."""

    delivery: Delivery
    organization_slug: str
    channel_name: str
    channel_type: str


def failed_deliveries(
    session: Session, *, limit: int, before_id: str | None = None
) -> list[FailedDelivery]:
    """Failed and unknown deliveries of every tenant, newest first, ``limit`` of them
    after the cursor ``before_id`` (an operator's view: never exposed to tenant keys)."""
    query = (
        select(Delivery, Organization.slug, Channel.name, Channel.type)
        .join(Organization, Organization.id == Delivery.organizationId)
        .join(
            Channel,
            (Channel.organizationId == Delivery.organizationId)
            & (Channel.id == Delivery.channelId),
        )
        .where(Delivery.state.in_(REPLAYABLE_STATES))
    )
    if before_id:
        query = query.where(Delivery.id < before_id)
    rows = session.execute(query.order_by(Delivery.id.desc()).limit(limit))
    return [FailedDelivery(d, slug, name, type_) for d, slug, name, type_ in rows]
