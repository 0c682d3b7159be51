"""Teams of the caller's organization and their members."""

# Path parameters keep the schema's camelCase names (teamId, userId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.members import MemberOut, member_out
from api.schemas import NON_BLANK, Out, StrictBody
from core.db.models import Member, Team, TeamMember
from core.tenancy.teams import (
    MAX_TEAM_NAME_LENGTH,
    add_team_member,
    create_team,
    delete_team,
    get_team,
    remove_team_member,
    rename_team,
)

router = APIRouter(prefix="/teams", tags=["teams"], responses=ERROR_RESPONSES)


class TeamIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Research"}]})

    name: str = Field(min_length=1, max_length=MAX_TEAM_NAME_LENGTH, json_schema_extra=NON_BLANK)


class TeamMemberIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"userId": "01J0000000"}]})

    userId: str = Field(min_length=1, max_length=64)


class TeamOut(Out):
    id: str
    name: str
    createdAt: datetime
    updatedAt: datetime


Reader = Annotated[TenantContext, requires("teams:read")]
Writer = Annotated[TenantContext, requires("teams:write")]


@router.post("", status_code=201)
def create(body: TeamIn, ctx: Writer, session: SessionDep) -> TeamOut:
    team = create_team(session, ctx.organization_id, body.name)
    ctx.audit(session, "team.create", "team", team.id, {"name": team.name})
    return TeamOut.model_validate(team)


@router.get("")
def list_teams(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[TeamOut]:
    query = select(Team).where(Team.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, Team.id, cursor, limit)))
    return page_of([TeamOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{teamId}")
def read_team(teamId: str, ctx: Reader, session: SessionDep) -> TeamOut:
    return TeamOut.model_validate(get_team(session, ctx.organization_id, teamId))


@router.patch("/{teamId}")
def patch_team(teamId: str, body: TeamIn, ctx: Writer, session: SessionDep) -> TeamOut:
    team = rename_team(session, ctx.organization_id, teamId, body.name)
    ctx.audit(session, "team.update", "team", team.id, {"name": team.name})
    return TeamOut.model_validate(team)


@router.delete("/{teamId}", status_code=204)
def remove_team(teamId: str, ctx: Writer, session: SessionDep) -> Response:
    delete_team(session, ctx.organization_id, teamId)
    ctx.audit(session, "team.delete", "team", teamId)
    return Response(status_code=204)


@router.get("/{teamId}/members")
def list_team_members(
    teamId: str, ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[MemberOut]:
    """The team's members, as members of the organization."""
    team = get_team(session, ctx.organization_id, teamId)
    query = (
        select(Member.id)
        .join(TeamMember, TeamMember.userId == Member.userId)
        .where(Member.organizationId == ctx.organization_id, TeamMember.teamId == team.id)
    )
    ids = list(session.scalars(paginate(query, Member.id, cursor, limit)))
    items = [member_out(session, ctx.organization_id, i) for i in ids]
    return page_of(items, ids, limit)


@router.post("/{teamId}/members", status_code=204)
def add_to_team(teamId: str, body: TeamMemberIn, ctx: Writer, session: SessionDep) -> Response:
    """Add a member of the organization to the team (idempotent; 404 for non-members)."""
    if add_team_member(session, ctx.organization_id, teamId, body.userId):
        ctx.audit(session, "team.member.add", "team", teamId, {"userId": body.userId})
    return Response(status_code=204)


@router.delete("/{teamId}/members/{userId}", status_code=204)
def remove_from_team(teamId: str, userId: str, ctx: Writer, session: SessionDep) -> Response:
    remove_team_member(session, ctx.organization_id, teamId, userId)
    ctx.audit(session, "team.member.remove", "team", teamId, {"userId": userId})
    return Response(status_code=204)
