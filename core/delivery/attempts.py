"""Attempt history of deliveries: one ``deliveryAttempts`` row per recorded outcome.

The row is written by :func:`core.delivery.record.record_outcome` in the same short
transaction as the fenced outcome (never across the send), with :data:`INSERT_ATTEMPT`,
a statement built once with bound parameters as the other per-delivery statements are
(:mod:`core.db.statements`): an ORM ``add`` and flush per delivery cost more Python than
the round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Insert, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from core.db.models import Delivery, DeliveryAttempt
from core.delivery.outcome import MAX_RESPONSE_EXCERPT, Outcome
from core.errors import NotFound
from core.ids import new_id

#: Longest error text kept on an attempt (as on the delivery row).
MAX_ATTEMPT_ERROR_CHARS = 1000
#: Attempts listed per delivery at most: a budget is 8, each replay adds a budget.
MAX_ATTEMPTS_LISTED = 200

_ATTEMPTS: Table = DeliveryAttempt.__table__  # type: ignore[assignment]

#: Each column of an attempt row and the parameter that binds it (no JSON columns, so
#: ``None`` binds SQL NULL).
ATTEMPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "a_id"),
    ("organizationId", "a_organization_id"),
    ("deliveryId", "a_delivery_id"),
    ("attempt", "a_attempt"),
    ("outcome", "a_outcome"),
    ("statusCode", "a_status"),
    ("durationMs", "a_duration_ms"),
    ("error", "a_error"),
    ("response", "a_response"),
    ("startedAt", "a_started_at"),
    ("createdAt", "a_now"),
    ("updatedAt", "a_now"),
)
#: The bound values of one attempt, typed as their columns (an ``INSERT ... SELECT`` of
#: them needs the types; see :mod:`core.delivery.record`).
ATTEMPT_VALUES: dict[str, BindParameter[Any]] = {
    column: bindparam(param, type_=_ATTEMPTS.c[column].type) for column, param in ATTEMPT_COLUMNS
}
#: One attempt, every column a parameter.
INSERT_ATTEMPT: Insert = insert(_ATTEMPTS).values(**ATTEMPT_VALUES)


def attempt_params(
    *,
    organization_id: str,
    delivery_id: str,
    attempt: int,
    outcome: Outcome,
    started_at: datetime,
    duration_ms: int | None,
    now: datetime,
) -> dict[str, object]:
    """The parameters of :data:`INSERT_ATTEMPT` for one outcome (texts cut to bounds)."""
    return {
        "a_id": new_id(),
        "a_organization_id": organization_id,
        "a_delivery_id": delivery_id,
        "a_attempt": attempt,
        "a_outcome": outcome.kind,
        "a_status": outcome.status,
        "a_duration_ms": duration_ms,
        "a_error": outcome.error[:MAX_ATTEMPT_ERROR_CHARS] if outcome.error else None,
        "a_response": outcome.response[:MAX_RESPONSE_EXCERPT] if outcome.response else None,
        "a_started_at": started_at,
        "a_now": now,
    }


def delivery_attempts(
    session: Session, organization_id: str, delivery_id: str, *, limit: int = MAX_ATTEMPTS_LISTED
) -> Sequence[DeliveryAttempt]:
    """The organization's delivery's attempts, oldest first (the newest ``limit``);
    NotFound for another organization's (or no) delivery."""
    owned = session.scalar(
        select(Delivery.id).where(
            Delivery.organizationId == organization_id, Delivery.id == delivery_id
        )
    )
    if owned is None:
        raise NotFound("no such delivery")
    newest = session.scalars(
        select(DeliveryAttempt)
        .where(
            DeliveryAttempt.organizationId == organization_id,
            DeliveryAttempt.deliveryId == delivery_id,
        )
        .order_by(DeliveryAttempt.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(newest))
