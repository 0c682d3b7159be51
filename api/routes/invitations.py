"""Invitations to the caller's organization; the invitee accepts or rejects by token.

Creating one mails the token to the invited address through the operator's relay
(``NEWSMON_SMTP_URL``) and shows it to no one else: holding it proves control of that
mailbox, so accepting is the invitee's own act. ``/invitations/accept`` and
``/invitations/reject`` take no API key, and answer nothing about any user: no user id,
no name, no inviter. Roles: see :func:`core.tenancy.invitations.check_invitable_role`.
"""

# Path parameters keep the schema's camelCase names (invitationId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, client_address, requires
from api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.members import Role
from api.schemas import EmailAddress, Out, StrictBody
from core.clock import utcnow
from core.db.models import Invitation, Organization
from core.system_mail import SystemMailer
from core.tenancy.audit import record_audit
from core.tenancy.invitations import (
    accept_invitation,
    cancel_invitation,
    check_invitable_role,
    effective_status,
    get_invitation,
    invite_by_email,
    reject_invitation,
)
from core.tenancy.members import MAX_USER_NAME_LENGTH

router = APIRouter(prefix="/invitations", tags=["invitations"], responses=ERROR_RESPONSES)

#: Longest token accepted (ours are 43 characters).
MAX_TOKEN_LENGTH = 128
#: Why inviting is impossible without a mail relay, and what to do instead.
NO_MAIL_MESSAGE = (
    "invitations are sent by email and no mail relay is configured: the operator sets "
    "NEWSMON_SMTP_URL and NEWSMON_MAIL_FROM, or adds the member directly "
    "(newsmon member add, or POST /operator/organizations/{organizationId}/members)"
)
#: What the invitation-sending routes may answer beyond the usual errors.
MAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "no mail relay configured"},
    503: {"model": ErrorResponse, "description": "the mail relay refused or is unreachable"},
}


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


class InvitationView(Out):
    """An invitation as its invitee sees it: which organization, which role; no users."""

    id: str
    organizationId: str
    organizationName: str
    email: str
    role: str
    status: str
    expiresAt: datetime


class TokenIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "x" * 43}]})

    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)
    name: str | None = Field(
        default=None, max_length=MAX_USER_NAME_LENGTH, description="for a new user only"
    )


class MembershipOut(Out):
    id: str
    role: str


class Accepted(Out):
    invitation: InvitationView
    member: MembershipOut


Reader = Annotated[TenantContext, requires("invitations:read")]
Writer = Annotated[TenantContext, requires("invitations:write")]


def invitation_out(invitation: Invitation, now: datetime) -> InvitationOut:
    data = {c: getattr(invitation, c) for c in InvitationOut.model_fields}
    data["status"] = effective_status(invitation, now)
    return InvitationOut.model_validate(data)


def system_mailer(request: Request) -> SystemMailer:
    """The operator's mail relay; 409 saying how to configure it when there is none."""
    mailer = SystemMailer.from_settings(request.app.state.settings)
    if mailer is None:
        raise ApiError(409, NO_MAIL_MESSAGE, type_="mail_not_configured")
    return mailer


@router.post("", status_code=201, responses=MAIL_RESPONSES)
def invite(
    body: InvitationCreate, request: Request, ctx: Writer, session: SessionDep
) -> InvitationOut:
    """Invite someone by email: the token goes to that address only (never in this
    response). Inviting an admin also needs ``members:write``; an owner, an operator."""
    check_invitable_role(ctx.permissions, body.role)
    now = utcnow()
    invitation = invite_by_email(
        session,
        system_mailer(request),
        ctx.organization_id,
        email=body.email,
        role=body.role,
        team_id=body.teamId,
        now=now,
    )
    ctx.audit(session, "invitation.create", "invitation", invitation.id, {"role": body.role})
    return invitation_out(invitation, now)


@router.get("")
def list_invitations(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[InvitationOut]:
    query = select(Invitation).where(Invitation.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, Invitation.id, cursor, limit)))
    now = utcnow()
    return page_of([invitation_out(r, now) for r in rows], [r.id for r in rows], limit)


@router.get("/{invitationId}")
def read_invitation(invitationId: str, ctx: Reader, session: SessionDep) -> InvitationOut:
    return invitation_out(get_invitation(session, ctx.organization_id, invitationId), utcnow())


@router.post("/{invitationId}/cancel")
def cancel(invitationId: str, ctx: Writer, session: SessionDep) -> InvitationOut:
    """Cancel a pending invitation; 422 if it is no longer pending."""
    now = utcnow()
    invitation = cancel_invitation(session, ctx.organization_id, invitationId, now=now)
    ctx.audit(session, "invitation.cancel", "invitation", invitationId)
    return invitation_out(invitation, now)


def _view(session: Session, invitation: Invitation, now: datetime) -> InvitationView:
    organization = session.get(Organization, invitation.organizationId)
    assert organization is not None  # the invitation cascades with its organization
    data = {
        c: getattr(invitation, c) for c in InvitationView.model_fields if c != "organizationName"
    }
    data.update(status=effective_status(invitation, now), organizationName=organization.name)
    return InvitationView.model_validate(data)


@router.post("/accept")
def accept(body: TokenIn, request: Request, session: SessionDep) -> Accepted:
    """The invitee joins with the mailed token (no API key; it works once)."""
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
        request_id=request.state.request_id,
        ip_address=client_address(request),
    )
    return Accepted(
        invitation=_view(session, invitation, now),
        member=MembershipOut(id=member.id, role=member.role),
    )


@router.post("/reject")
def reject(body: TokenIn, request: Request, session: SessionDep) -> InvitationView:
    """The invitee declines with the mailed token."""
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
        request_id=request.state.request_id,
        ip_address=client_address(request),
    )
    return _view(session, invitation, now)
