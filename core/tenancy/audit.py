"""The audit log: one ``auditLogs`` row per mutation, in the mutation's own transaction,
and the organization's view of it (``GET /audit-log``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.db.models import ACTOR_TYPES, AuditLog

#: Longest ``ipAddress`` kept (the column's size; an IPv6 address with a zone fits).
MAX_IP_CHARS = 64
#: An ``action`` filter ending with this matches every action under the prefix.
ACTION_PREFIX_WILDCARD = ".*"


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
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add who (``actor_type``/``actor_id``) did ``action`` to what, for which organization;
    ``ip_address``: the address the request came from (as the server sees it).

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
            ipAddress=ip_address[:MAX_IP_CHARS] if ip_address else None,
            details=details,
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    """Which entries of an organization's log: by actor (``actor_id``: the key's id for
    API and operator keys), action (exact, or a prefix with ``.*``: ``key.*``), target,
    and time (``since`` inclusive, ``until`` exclusive, on ``createdAt``; an empty window
    matches nothing, as the stories' filter does, so every value the schema allows is
    accepted)."""

    actor_type: str | None = None
    actor_id: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _conditions(f: AuditFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.actor_type is not None:
        conditions.append(AuditLog.actorType == f.actor_type)
    if f.actor_id is not None:
        conditions.append(AuditLog.actorId == f.actor_id)
    if f.action is not None and f.action.endswith(ACTION_PREFIX_WILDCARD):
        prefix = f.action[: -len(ACTION_PREFIX_WILDCARD)] + "."
        conditions.append(AuditLog.action.startswith(prefix, autoescape=True))
    elif f.action is not None:
        conditions.append(AuditLog.action == f.action)
    if f.target_type is not None:
        conditions.append(AuditLog.targetType == f.target_type)
    if f.target_id is not None:
        conditions.append(AuditLog.targetId == f.target_id)
    if f.since is not None:
        conditions.append(AuditLog.createdAt >= f.since)
    if f.until is not None:
        conditions.append(AuditLog.createdAt < f.until)
    return conditions


def audit_entries(
    session: Session,
    organization_id: str,
    f: AuditFilter,
    *,
    limit: int,
    before_id: str | None = None,
) -> list[AuditLog]:
    """The organization's audit entries matching ``f``, newest first, ``limit`` of them
    after ``before_id`` (ids sort by creation time, so the order is total and a page
    boundary never moves while entries are added)."""
    query = select(AuditLog).where(AuditLog.organizationId == organization_id, *_conditions(f))
    if before_id:
        query = query.where(AuditLog.id < before_id)
    return list(session.scalars(query.order_by(AuditLog.id.desc()).limit(limit)))
