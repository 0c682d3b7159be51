"""Invitations to an organization: the token is shown once and stored only as a hash.

The token is ``INVITATION_TOKEN_BYTES`` random bytes (base64url); ``tokenHash`` holds its
SHA-256 (the same scheme as API keys), so a database leak reveals no usable token. The
invitee accepts or rejects with the token alone; the organization cancels by id. A
pending invitation past ``expiresAt`` counts as ``expired`` (Better Auth's default
lifetime of 48 hours). Invitations made with an API key name the organization's oldest
owner as inviter (``inviterId`` must be a user).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Invitation, Member, Team
from core.db.scoped import get_owned
from core.errors import NotFound, ValidationError
from core.keys import hash_key
from core.tenancy.members import add_member, check_role, first_owner, normal_email, user_for_email

#: How long an invitation can be accepted (Better Auth's ``invitationExpiresIn``).
INVITATION_TTL = timedelta(hours=48)
#: Random bytes of an invitation token.
INVITATION_TOKEN_BYTES = 32


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # shown once; only its hash is stored


def effective_status(invitation: Invitation, now: datetime) -> str:
    """``pending`` past its expiry reads as ``expired``."""
    expires = invitation.expiresAt
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=now.tzinfo)
    if invitation.status == "pending" and expires <= now:
        return "expired"
    return invitation.status


def create_invitation(
    session: Session,
    organization_id: str,
    *,
    email: str,
    role: str,
    team_id: str | None,
    now: datetime,
) -> IssuedInvitation:
    check_role(role)
    email = normal_email(email)
    owner = first_owner(session, organization_id)
    if owner is None:
        raise ValidationError("the organization has no owner to invite in its name", field="email")
    if (
        team_id is not None
        and session.scalar(
            select(Team.id).where(Team.organizationId == organization_id, Team.id == team_id)
        )
        is None
    ):
        raise NotFound("no such team")
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    invitation = Invitation(
        organizationId=organization_id,
        inviterId=owner.userId,
        teamId=team_id,
        email=email,
        role=role,
        status="pending",
        tokenHash=hash_key(token),
        expiresAt=now + INVITATION_TTL,
    )
    session.add(invitation)
    session.flush()
    return IssuedInvitation(invitation, token)


def get_invitation(session: Session, organization_id: str, invitation_id: str) -> Invitation:
    return get_owned(session, Invitation, organization_id, invitation_id, "invitation")


def cancel_invitation(
    session: Session, organization_id: str, invitation_id: str, *, now: datetime
) -> Invitation:
    """Cancel a pending invitation (its token stops working)."""
    invitation = get_invitation(session, organization_id, invitation_id)
    if effective_status(invitation, now) != "pending":
        raise ValidationError(f"invitation is {effective_status(invitation, now)}", field="status")
    invitation.status = "canceled"
    session.flush()
    return invitation


def _by_token(session: Session, token: str, now: datetime) -> Invitation:
    invitation = session.scalar(select(Invitation).where(Invitation.tokenHash == hash_key(token)))
    if invitation is None or effective_status(invitation, now) != "pending":
        raise NotFound("no such pending invitation (unknown, used, canceled or expired)")
    return invitation


def accept_invitation(
    session: Session, token: str, *, name: str | None, now: datetime
) -> tuple[Invitation, Member]:
    """The invitee joins with the invited role (a user is created for the email if
    needed); the token works once."""
    invitation = _by_token(session, token, now)
    done = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == "pending")
        .values(status="accepted", updatedAt=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("no such pending invitation (unknown, used, canceled or expired)")
    user = user_for_email(session, invitation.email, name)
    member = add_member(session, invitation.organizationId, user.id, invitation.role)
    if invitation.teamId is not None:
        from core.tenancy.teams import add_team_member  # noqa: PLC0415 (teams import members)

        add_team_member(session, invitation.organizationId, invitation.teamId, user.id)
    session.refresh(invitation)
    return invitation, member


def reject_invitation(session: Session, token: str, *, now: datetime) -> Invitation:
    invitation = _by_token(session, token, now)
    invitation.status = "rejected"
    session.flush()
    return invitation
