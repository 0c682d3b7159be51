"""The organization's audit log: who did what, when, with which key, in which request.

Reading it needs ``audit:read``, a permission of its own that no key has unless granted
(keys made before it existed included): the log shows every key's and member's actions,
so it is for the organization's admins and owners, whose keys an operator (or a key
holding it) grants it to.
"""

# Query parameters keep the schema's camelCase names (actorId, targetType).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import MAX_CURSOR_LENGTH, Cursor, Limit, Page, page_of
from api.schemas import Out, UtcDateTime
from core.db.models import ACTOR_TYPES
from core.errors import ValidationError
from core.tenancy.audit import AuditFilter, audit_entries

router = APIRouter(prefix="/audit-log", tags=["audit"], responses=ERROR_RESPONSES)

#: Longest action or target type a filter names (the columns' width).
MAX_ACTION_LENGTH = 64


class AuditEntryOut(Out):
    """One audited action."""

    id: str
    createdAt: datetime
    actorType: Literal["apikey", "operator", "user", "system"]
    actorId: str | None = Field(
        description="the key's id (actorType apikey or operator), the user's id (user)"
    )
    action: str = Field(examples=["channel.update"])
    targetType: str | None
    targetId: str | None
    requestId: str | None = Field(description="the x-request-id of the request that did it")
    ipAddress: str | None = Field(
        description="the address that request came from, as the server saw it (none for "
        "actions of newsmon itself)"
    )
    details: dict[str, Any] | None = Field(description="names and ids only, never secrets")


Reader = Annotated[TenantContext, requires("audit:read")]
IdFilter = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
TextFilter = Annotated[str | None, Query(max_length=MAX_ACTION_LENGTH)]


@router.get("")
def list_audit_log(
    ctx: Reader,
    session: SessionDep,
    actorType: Annotated[str | None, Query(json_schema_extra={"enum": list(ACTOR_TYPES)})] = None,
    actorId: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="e.g. a key's id")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=MAX_ACTION_LENGTH,
            description="exact (`key.rotate`) or every action under a prefix (`key.*`)",
        ),
    ] = None,
    targetType: TextFilter = None,
    targetId: IdFilter = None,
    since: Annotated[UtcDateTime | None, Query(description="at or after")] = None,
    until: Annotated[UtcDateTime | None, Query(description="before")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AuditEntryOut]:
    """The organization's audit log, newest first; ``nextCursor`` continues it with the
    same filters (entries added meanwhile never shift a page)."""
    if actorType is not None and actorType not in ACTOR_TYPES:
        raise ValidationError(f"must be one of {', '.join(ACTOR_TYPES)}", field="actorType")
    found = AuditFilter(
        actor_type=actorType,
        actor_id=actorId,
        action=action,
        target_type=targetType,
        target_id=targetId,
        since=since,
        until=until,
    )
    rows = audit_entries(session, ctx.organization_id, found, limit=limit + 1, before_id=cursor)
    return page_of([AuditEntryOut.model_validate(r) for r in rows], [r.id for r in rows], limit)
