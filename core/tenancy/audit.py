"""The audit log: one ``auditLogs`` row per mutation, in the mutation's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.db.models import ACTOR_TYPES, AuditLog


def record_audit(
    session: Session,
    organization_id: str | None,
    *,
    actor_type: str,
    actor_id: str | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add who (``actor_type``/``actor_id``) did ``action`` to what, for which organization.

    ``details`` must never hold secrets or key material; callers pass names and ids only.
    """
    if actor_type not in ACTOR_TYPES:
        raise ValueError(f"unknown actor type {actor_type!r}")
    session.add(
        AuditLog(
            organizationId=organization_id,
            actorType=actor_type,
            actorId=actor_id,
            action=action,
            targetType=target_type,
            targetId=target_id,
            requestId=request_id,
            details=details,
        )
    )
