"""Invitations to an organization: the token goes only to the invitee's mailbox.

The token is ``INVITATION_TOKEN_BYTES`` random bytes (base64url); ``tokenHash`` holds its
SHA-256 (the same scheme as API keys), so a database leak reveals no usable token.
Acceptance must be the invitee's own act, so :func:`invite_by_email` sends the token to
the invited address through the operator's relay (:mod:`core.system_mail`) and to no one
else: the inviter never sees it. Holding the token proves control of that mailbox; the
invitee accepts or rejects with it alone. A pending invitation past ``expiresAt`` counts
as ``expired`` (Better Auth's default lifetime of 48 hours). Invitations made with an API
key name the organization's oldest owner as inviter (``inviterId`` must be a user).

Roles: a key with ``invitations:write`` invites members; inviting an admin also needs
``members:write`` (the authority to make one); an owner only an operator makes.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Invitation, Member, Organization, Team
from core.db.scoped import get_owned
from core.errors import Forbidden, NotFound, ValidationError
from core.keys import hash_key, require_permission
from core.system_mail import SystemMailer
from core.tenancy.members import (
    ADMIN_ROLE,
    OWNER_ROLE,
    add_member,
    check_role,
    first_owner,
    normal_email,
    user_for_email,
)

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


def check_invitable_role(permissions: Mapping[str, Collection[str]], role: str) -> None:
    """A tenant key may invite with ``role`` only within its authority (403 otherwise)."""
    check_role(role)
    if role == OWNER_ROLE:
        raise Forbidden(
            "only an operator can invite an owner",
            fields=[("role", "owner is granted by an operator only")],
        )
    if role == ADMIN_ROLE:
        require_permission(permissions, "members:write")


def _prepare(
    session: Session,
    organization_id: str,
    *,
    email: str,
    role: str,
    team_id: str | None,
    now: datetime,
) -> IssuedInvitation:
    """A checked invitation and its token, not yet stored."""
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
    return IssuedInvitation(invitation, token)


def create_invitation(
    session: Session,
    organization_id: str,
    *,
    email: str,
    role: str,
    team_id: str | None,
    now: datetime,
) -> IssuedInvitation:
    """Store an invitation and return its token, sent to no one (seeds and tests)."""
    issued = _prepare(session, organization_id, email=email, role=role, team_id=team_id, now=now)
    session.add(issued.invitation)
    session.flush()
    return issued


def invitation_mail(organization_name: str, issued: IssuedInvitation) -> tuple[str, str]:
    """Subject and plain body of the message carrying the token to the invitee."""
    invitation = issued.invitation
    expires = invitation.expiresAt.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"You are invited to join {organization_name} on newsmon as {invitation.role}.\n\n"
        "To accept, send this to the newsmon API that manages it:\n\n"
        "    POST /invitations/accept\n"
        f'    {{"token": "{issued.token}"}}\n\n'
        "To decline, send the same body to POST /invitations/reject.\n"
        f"The invitation expires at {expires}. If you did not expect it, ignore this message.\n"
    )
    return f"Invitation to join {organization_name} on newsmon", body


def invite_by_email(
    session: Session,
    mailer: SystemMailer,
    organization_id: str,
    *,
    email: str,
    role: str,
    team_id: str | None,
    now: datetime,
) -> Invitation:
    """Invite ``email``: the token is mailed to that address only, then the invitation is
    stored. A failed send (:class:`MailError`) stores nothing; a send that succeeds but
    whose transaction then fails leaves a token matching nothing (harmless)."""
    issued = _prepare(session, organization_id, email=email, role=role, team_id=team_id, now=now)
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    subject, body = invitation_mail(organization.name, issued)
    mailer.send(issued.invitation.email, subject, body)  # network first, then a short write
    session.add(issued.invitation)
    session.flush()
    return issued.invitation


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
