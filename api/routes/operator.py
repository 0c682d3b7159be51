"""Operator routes (operator keys only): tenants, their keys, runs and sources across tenants."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.deps import OperatorDep, SessionDep, request_broker
from api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.invitations import (
    MAIL_RESPONSES,
    InvitationCreate,
    InvitationOut,
    invitation_out,
    system_mailer,
)
from api.routes.keys import KeyCreate, KeyCreated, KeyOut, issue_key, key_out
from api.routes.members import MemberOut, Role, member_out
from api.routes.runs import RunOut
from api.schemas import NON_BLANK, EmailAddress, Out, PatchBody, StrictBody
from core.clock import utcnow
from core.db.models import RUN_STATES, ApiKey, Channel, Organization, Run, Source
from core.errors import NotFound, ValidationError
from core.ops.overview import scheduler_lag
from core.tenancy.invitations import invite_by_email
from core.tenancy.members import (
    MAX_USER_NAME_LENGTH,
    OWNER_ROLE,
    add_member,
    enrol,
    user_for_email,
)
from core.tenancy.organizations import MAX_NAME_LENGTH, SLUG_PATTERN, create_organization
from workers.broker import BROKER_ERRORS
from workers.queue_depths import queue_depths

router = APIRouter(prefix="/operator", tags=["operator"], responses=ERROR_RESPONSES)


class OwnerIn(StrictBody):
    email: EmailAddress
    name: str | None = Field(default=None, max_length=MAX_USER_NAME_LENGTH)


class MemberIn(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@acme.example", "role": "owner"}]}
    )

    email: EmailAddress
    name: str | None = Field(default=None, max_length=MAX_USER_NAME_LENGTH)
    role: Role = "member"


class OrganizationCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Acme Corp", "owner": {"email": "ada@acme.example"}}]
        }
    )

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=NON_BLANK)
    slug: str | None = Field(default=None, max_length=64, pattern=SLUG_PATTERN.pattern)
    owner: OwnerIn | None = Field(
        default=None, description="user (found or created by email) made the owner"
    )


class OrganizationUpdate(PatchBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"isActive": False}]})

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=NON_BLANK
    )
    isActive: bool | None = None


class OrganizationOut(Out):
    id: str
    name: str
    slug: str
    isActive: bool
    createdAt: datetime
    updatedAt: datetime


class SourceOut(Out):
    id: str
    type: str
    url: str
    title: str | None
    status: str
    failureCount: int
    nextFetchAt: datetime | None
    updatedAt: datetime


def _organization(session: Session, organization_id: str) -> Organization:
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    return organization


@router.post("/organizations", status_code=201)
def create_org(body: OrganizationCreate, op: OperatorDep, session: SessionDep) -> OrganizationOut:
    """Create a tenant (the slug is derived from the name unless given)."""
    organization = create_organization(session, name=body.name, slug=body.slug)
    if body.owner is not None:
        user = user_for_email(session, body.owner.email, body.owner.name)
        add_member(session, organization.id, user.id, OWNER_ROLE)
    op.audit(
        session,
        organization.id,
        action="organization.create",
        target_type="organization",
        target_id=organization.id,
    )
    return OrganizationOut.model_validate(organization)


@router.get("/organizations")
def list_orgs(
    op: OperatorDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[OrganizationOut]:
    rows = list(session.scalars(paginate(select(Organization), Organization.id, cursor, limit)))
    return page_of([OrganizationOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


@router.get("/organizations/{organizationId}")
def read_org(organizationId: str, op: OperatorDep, session: SessionDep) -> OrganizationOut:
    return OrganizationOut.model_validate(_organization(session, organizationId))


@router.patch("/organizations/{organizationId}")
def patch_org(
    organizationId: str, body: OrganizationUpdate, op: OperatorDep, session: SessionDep
) -> OrganizationOut:
    """Rename, disable (``isActive: false``: its keys stop working, nothing of it runs) or
    enable a tenant."""
    organization = _organization(session, organizationId)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        if not changes["name"].strip():
            raise ValidationError("must not be blank", field="name")
        organization.name = changes["name"].strip()
    if "isActive" in changes:
        organization.isActive = changes["isActive"]
    session.flush()
    op.audit(
        session,
        organizationId,
        action="organization.update",
        target_type="organization",
        target_id=organizationId,
        details=changes,
    )
    return OrganizationOut.model_validate(organization)


@router.delete("/organizations/{organizationId}", status_code=204)
def delete_org(organizationId: str, op: OperatorDep, session: SessionDep) -> Response:
    """Delete a tenant and everything it owns (database cascades); the audit row stays."""
    organization = _organization(session, organizationId)
    session.execute(delete(Organization).where(Organization.id == organization.id))
    op.audit(
        session,
        None,
        action="organization.delete",
        target_type="organization",
        target_id=organizationId,
        details={"slug": organization.slug},
    )
    return Response(status_code=204)


@router.get("/organizations/{organizationId}/keys")
def list_org_keys(
    organizationId: str,
    op: OperatorDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[KeyOut]:
    _organization(session, organizationId)
    query = select(ApiKey).where(ApiKey.organizationId == organizationId)
    rows = list(session.scalars(paginate(query, ApiKey.id, cursor, limit)))
    return page_of([key_out(r) for r in rows], [r.id for r in rows], limit)


@router.post("/organizations/{organizationId}/keys", status_code=201)
def create_org_key(
    organizationId: str, body: KeyCreate, op: OperatorDep, session: SessionDep
) -> KeyCreated:
    """Create a key of any organization, with any permissions (shown once)."""
    _organization(session, organizationId)
    created = issue_key(session, organizationId, body)
    op.audit(
        session,
        organizationId,
        action="key.create",
        target_type="apikey",
        target_id=created.id,
        details={"name": created.name},
    )
    return created


@router.post("/organizations/{organizationId}/members")
def enrol_member(
    organizationId: str, body: MemberIn, op: OperatorDep, session: SessionDep
) -> MemberOut:
    """Make the user with ``email`` (created if new) a member with ``role``, or give a
    member that role, owner included: the operator vouches, no invitation or mail. The
    last owner keeps the role (422)."""
    _organization(session, organizationId)
    member = enrol(session, organizationId, body.email, body.role, body.name)
    op.audit(
        session,
        organizationId,
        action="member.enrol",
        target_type="member",
        target_id=member.id,
        details={"role": body.role},
    )
    return member_out(session, organizationId, member.id)


@router.post(
    "/organizations/{organizationId}/invitations", status_code=201, responses=MAIL_RESPONSES
)
def invite_to_org(
    organizationId: str,
    body: InvitationCreate,
    request: Request,
    op: OperatorDep,
    session: SessionDep,
) -> InvitationOut:
    """Invite with any role, owner included; the token is mailed to the invitee only."""
    _organization(session, organizationId)
    now = utcnow()
    invitation = invite_by_email(
        session,
        system_mailer(request),
        organizationId,
        email=body.email,
        role=body.role,
        team_id=body.teamId,
        now=now,
    )
    op.audit(
        session,
        organizationId,
        action="invitation.create",
        target_type="invitation",
        target_id=invitation.id,
        details={"role": body.role},
    )
    return invitation_out(invitation, now)


@router.get("/runs")
def recent_runs(
    op: OperatorDep,
    session: SessionDep,
    state: Annotated[str | None, Query(json_schema_extra={"enum": list(RUN_STATES)})] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RunOut]:
    """Recent runs of every tenant, newest first."""
    query = select(Run)
    if state is not None:
        if state not in RUN_STATES:
            raise ValidationError(f"must be one of {', '.join(RUN_STATES)}", field="state")
        query = query.where(Run.state == state)
    rows = list(session.scalars(paginate(query, Run.id, cursor, limit)))
    return page_of([RunOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


@router.get("/sources/failing")
def failing_sources(
    op: OperatorDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[SourceOut]:
    """Sources whose fetches keep failing (shared by every search following them)."""
    query = select(Source).where(Source.status == "failing")
    rows = list(session.scalars(paginate(query, Source.id, cursor, limit)))
    return page_of([SourceOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


class FailingChannelOut(Out):
    id: str
    organizationId: str
    name: str
    type: str
    status: str
    consecutiveFailures: int
    lastError: str | None
    updatedAt: datetime


class LagOut(Out):
    """Seconds behind: the oldest due schedule not yet fired, the oldest queued run."""

    overdueScheduleS: float | None
    oldestQueuedRunS: float | None


class QueueDepthOut(Out):
    queue: str
    ready: int
    delayed: int
    dead: int


@router.get("/channels/failing")
def failing_channels(
    op: OperatorDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[FailingChannelOut]:
    """Channels of every tenant that keep failing or are broken (secrets never shown)."""
    query = select(Channel).where(Channel.status.in_(("failing", "broken")))
    rows = list(session.scalars(paginate(query, Channel.id, cursor, limit)))
    items = [FailingChannelOut.model_validate(r) for r in rows]
    return page_of(items, [r.id for r in rows], limit)


@router.get("/scheduler/lag")
def lag(op: OperatorDep, session: SessionDep) -> LagOut:
    found = scheduler_lag(session, now=utcnow())
    return LagOut(
        overdueScheduleS=found.overdue_schedule.total_seconds() if found.overdue_schedule else None,
        oldestQueuedRunS=(
            found.oldest_queued_run.total_seconds() if found.oldest_queued_run else None
        ),
    )


@router.get(
    "/queues", responses={503: {"model": ErrorResponse, "description": "queue unreachable"}}
)
def queues(op: OperatorDep, request: Request) -> list[QueueDepthOut]:
    """Messages ready, delayed and dead per queue."""
    try:
        depths = queue_depths(request_broker(request))
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None
    return [QueueDepthOut.model_validate(d, from_attributes=True) for d in depths]
