"""Teams of an organization and their members (who must be members of the organization)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Team, TeamMember
from core.db.scoped import get_owned
from core.errors import Conflict, NotFound, ValidationError
from core.tenancy.members import member_of

#: Longest team name accepted.
MAX_TEAM_NAME_LENGTH = 255


def _name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_TEAM_NAME_LENGTH:
        raise ValidationError(f"must be 1 to {MAX_TEAM_NAME_LENGTH} characters", field="name")
    return clean


def get_team(session: Session, organization_id: str, team_id: str) -> Team:
    return get_owned(session, Team, organization_id, team_id, "team")


def _save(session: Session, team: Team) -> Team:
    try:
        with session.begin_nested():
            session.add(team)
    except IntegrityError:
        raise Conflict("a team with this name exists", field="name") from None
    return team


def create_team(session: Session, organization_id: str, name: str) -> Team:
    return _save(session, Team(organizationId=organization_id, name=_name(name)))


def rename_team(session: Session, organization_id: str, team_id: str, name: str) -> Team:
    team = get_team(session, organization_id, team_id)
    team.name = _name(name)
    return _save(session, team)


def delete_team(session: Session, organization_id: str, team_id: str) -> None:
    session.delete(get_team(session, organization_id, team_id))
    session.flush()


def add_team_member(session: Session, organization_id: str, team_id: str, user_id: str) -> bool:
    """Put a member of the organization in a team; False if already there."""
    team = get_team(session, organization_id, team_id)
    member_of(session, organization_id, user_id)
    exists = select(TeamMember.id).where(TeamMember.teamId == team.id, TeamMember.userId == user_id)
    if session.scalar(exists) is not None:
        return False
    session.add(TeamMember(teamId=team.id, userId=user_id))
    session.flush()
    return True


def remove_team_member(session: Session, organization_id: str, team_id: str, user_id: str) -> None:
    team = get_team(session, organization_id, team_id)
    row = session.scalar(
        select(TeamMember).where(TeamMember.teamId == team.id, TeamMember.userId == user_id)
    )
    if row is None:
        raise NotFound("no such team member")
    session.delete(row)
    session.flush()
