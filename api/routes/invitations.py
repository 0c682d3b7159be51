"""Invitations to the caller's organization; accept/reject with the token alone.

The token is in the create response only (stored hashed). ``/invitations/accept`` and
``/invitations/reject`` take no API key: the token is the credential of the invitee.
"""

# Path parameters keep the schema's camelCase names (invitationId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import ConfigDict, Field
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.members import MemberOut, Role, member_out
from api.schemas import EmailAddress, Out, StrictBody
from core.clock import utcnow
from core.db.models import Invitation
from core.tenancy.audit import record_audit
from core.tenancy.invitations import (
    accept_invitation,
    cancel_invitation,
    create_invitation,
    effective_status,
    get_invitation,
    reject_invitation,
)
from core.tenancy.members import MAX_USER_NAME_LENGTH

router = APIRouter(prefix="/invitations", tags=["invitations"], responses=ERROR_RESPONSES)

#: Longest token accepted (ours are 43 characters).
MAX_TOKEN_LENGTH = 128


class InvitationCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.com", "role": "member"}]}
    )

    email: EmailAddress
    role: Role = "member"
    teamId: str | None = Field(default=None, max_length=64)


class InvitationOut(Out):
    id: str
    email: str
    role: str
    status: str
    teamId: str | None
    inviterId: str
    expiresAt: datetime
    createdAt: datetime


class InvitationCreated(InvitationOut):
    token: str = Field(description="shown once; the invitee accepts or rejects with it")


class TokenIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "x" * 43}]})

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)
    name: str | None = Field(default=None, max_length=MAX_USER_NAME_LENGTH)


class Accepted(Out):
    invitation: InvitationOut
    member: MemberOut


Reader = Annotated[TenantContext, requires("invitations:read")]
Writer = Annotated[TenantContext, requires("invitations:write")]


def _out(invitation: Invitation, now: datetime) -> InvitationOut:
    data = {c: getattr(invitation, c) for c in InvitationOut.model_fields}
    data["status"] = effective_status(invitation, now)
    return InvitationOut.model_validate(data)


@router.post("", status_code=201)
def invite(body: InvitationCreate, ctx: Writer, session: SessionDep) -> InvitationCreated:
    now = utcnow()
    issued = create_invitation(
        session, ctx.organization_id, email=body.email, role=body.role, team_id=body.teamId, now=now
    )
    ctx.audit(session, "invitation.create", "invitation", issued.invitation.id, {"role": body.role})
    return InvitationCreated(**_out(issued.invitation, now).model_dump(), token=issued.token)


@router.get("")
def list_invitations(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[InvitationOut]:
    query = select(Invitation).where(Invitation.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, Invitation.id, cursor, limit)))
    now = utcnow()
    return page_of([_out(r, now) for r in rows], [r.id for r in rows], limit)


@router.get("/{invitationId}")
def read_invitation(invitationId: str, ctx: Reader, session: SessionDep) -> InvitationOut:
    return _out(get_invitation(session, ctx.organization_id, invitationId), utcnow())


@router.post("/{invitationId}/cancel")
def cancel(invitationId: str, ctx: Writer, session: SessionDep) -> InvitationOut:
    """Cancel a pending invitation; 422 if it is no longer pending."""
    now = utcnow()
    invitation = cancel_invitation(session, ctx.organization_id, invitationId, now=now)
    ctx.audit(session, "invitation.cancel", "invitation", invitationId)
    return _out(invitation, now)


@router.post("/accept")
def accept(body: TokenIn, session: SessionDep) -> Accepted:
    """The invitee joins (no API key: the token is the credential; it works once)."""
    now = utcnow()
    invitation, member = accept_invitation(session, body.token, name=body.name, now=now)
    record_audit(
        session,
        invitation.organizationId,
        actor_type="user",
        actor_id=member.userId,
        action="invitation.accept",
        target_type="invitation",
        target_id=invitation.id,
    )
    return Accepted(
        invitation=_out(invitation, now),
        member=member_out(session, invitation.organizationId, member.id),
    )


@router.post("/reject")
def reject(body: TokenIn, session: SessionDep) -> InvitationOut:
    now = utcnow()
    invitation = reject_invitation(session, body.token, now=now)
    record_audit(
        session,
        invitation.organizationId,
        actor_type="user",
        actor_id=None,
        action="invitation.reject",
        target_type="invitation",
        target_id=invitation.id,
    )
    return _out(invitation, now)
