"""Members of the caller's organization (users with a role) and their roles."""

# Path parameters keep the schema's camelCase names (memberId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import ConfigDict
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.schemas import Out, StrictBody
from core.db.models import Member, User
from core.tenancy.members import change_role, get_member, remove_member

router = APIRouter(prefix="/members", tags=["members"], responses=ERROR_RESPONSES)

Role = Literal["owner", "admin", "member"]


class MemberOut(Out):
    id: str
    userId: str
    email: str
    name: str
    role: str
    createdAt: datetime


class MemberUpdate(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "admin"}]})

    role: Role


Reader = Annotated[TenantContext, requires("members:read")]
Writer = Annotated[TenantContext, requires("members:write")]


def _query(organization_id: str) -> Select[Member, str, str]:
    return (
        select(Member, User.email, User.name)
        .join(User, User.id == Member.userId)
        .where(Member.organizationId == organization_id)
    )


def _out(member: Member, email: str, name: str) -> MemberOut:
    data: dict[str, Any] = {c: getattr(member, c, None) for c in MemberOut.model_fields}
    data.update(email=email, name=name)
    return MemberOut.model_validate(data)


def member_out(session: Session, organization_id: str, member_id: str) -> MemberOut:
    get_member(session, organization_id, member_id)
    row = session.execute(_query(organization_id).where(Member.id == member_id)).one()
    return _out(*row)


@router.get("")
def list_members(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[MemberOut]:
    rows = session.execute(paginate(_query(ctx.organization_id), Member.id, cursor, limit)).all()
    return page_of([_out(*r) for r in rows], [r[0].id for r in rows], limit)


@router.get("/{memberId}")
def read_member(memberId: str, ctx: Reader, session: SessionDep) -> MemberOut:
    return member_out(session, ctx.organization_id, memberId)


@router.patch("/{memberId}")
def patch_member(memberId: str, body: MemberUpdate, ctx: Writer, session: SessionDep) -> MemberOut:
    """Change a member's role; the owner role is granted and taken by an operator only
    (403)."""
    change_role(session, ctx.organization_id, memberId, body.role, by_operator=False)
    ctx.audit(session, "member.update", "member", memberId, {"role": body.role})
    return member_out(session, ctx.organization_id, memberId)


@router.delete("/{memberId}", status_code=204)
def remove(memberId: str, ctx: Writer, session: SessionDep) -> Response:
    """Remove a member (an owner only an operator removes: 403)."""
    remove_member(session, ctx.organization_id, memberId, by_operator=False)
    ctx.audit(session, "member.delete", "member", memberId)
    return Response(status_code=204)
