"""Members of an organization (users x organization with a role), and their users.

API keys act for the organization, not for a user, so the API manages members directly.
The owner role is above any key's authority: only an operator grants it, changes an
owner's role or removes an owner (``by_operator``). An organization keeps at least one
owner: the last one cannot be demoted or removed.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import MEMBER_ROLES, Member, User
from core.db.scoped import get_owned
from core.errors import Forbidden, NotFound, ValidationError

#: The role that can never go missing from an organization; only operators grant it.
OWNER_ROLE = "owner"
#: The role that manages members; inviting one needs the authority to make one.
ADMIN_ROLE = "admin"
#: Longest user name / email address accepted.
MAX_USER_NAME_LENGTH = 255
MAX_EMAIL_LENGTH = 320


def normal_email(email: str) -> str:
    """Trimmed, lower-cased; refused unless it looks like an address (names the field)."""
    clean = email.strip().lower()
    local, at, domain = clean.partition("@")
    if not (at and local and "." in domain) or len(clean) > MAX_EMAIL_LENGTH:
        raise ValidationError("not an email address", field="email")
    if any(c.isspace() or c in ",<>" for c in clean):
        raise ValidationError("not an email address", field="email")
    return clean


def user_for_email(session: Session, email: str, name: str | None = None) -> User:
    """The user with this email, created (unverified) if there is none."""
    email = normal_email(email)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=(name or email.split("@")[0])[:MAX_USER_NAME_LENGTH])
        session.add(user)
        session.flush()
    return user


def check_role(role: str) -> str:
    if role not in MEMBER_ROLES:
        raise ValidationError(f"must be one of {', '.join(MEMBER_ROLES)}", field="role")
    return role


def add_member(session: Session, organization_id: str, user_id: str, role: str) -> Member:
    """Make a user a member (an existing membership keeps its id and takes the role)."""
    check_role(role)
    member = session.scalar(
        select(Member).where(Member.organizationId == organization_id, Member.userId == user_id)
    )
    if member is None:
        member = Member(organizationId=organization_id, userId=user_id, role=role)
        session.add(member)
    elif member.role != OWNER_ROLE:
        member.role = role
    session.flush()
    return member


def get_member(session: Session, organization_id: str, member_id: str) -> Member:
    return get_owned(session, Member, organization_id, member_id, "member")


def member_of(session: Session, organization_id: str, user_id: str) -> Member:
    """The membership of ``user_id`` (404 when the user is not a member)."""
    member = session.scalar(
        select(Member).where(Member.organizationId == organization_id, Member.userId == user_id)
    )
    if member is None:
        raise NotFound("no such member")
    return member


def _owners(session: Session, organization_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Member)
            .where(Member.organizationId == organization_id, Member.role == OWNER_ROLE)
        )
        or 0
    )


def _owner_change_refused(what: str) -> Forbidden:
    return Forbidden(
        f"only an operator can {what}", fields=[("role", "the owner role is an operator's")]
    )


def change_role(
    session: Session, organization_id: str, member_id: str, role: str, *, by_operator: bool
) -> Member:
    member = get_member(session, organization_id, member_id)
    check_role(role)
    if not by_operator and OWNER_ROLE in (role, member.role) and role != member.role:
        raise _owner_change_refused("grant or take the owner role")
    if member.role == OWNER_ROLE and role != OWNER_ROLE and _owners(session, organization_id) < 2:
        raise ValidationError("the last owner cannot be demoted", field="role")
    member.role = role
    session.flush()
    return member


def remove_member(
    session: Session, organization_id: str, member_id: str, *, by_operator: bool
) -> None:
    member = get_member(session, organization_id, member_id)
    if not by_operator and member.role == OWNER_ROLE:
        raise _owner_change_refused("remove an owner")
    if member.role == OWNER_ROLE and _owners(session, organization_id) < 2:
        raise ValidationError("the last owner cannot be removed", field="memberId")
    session.delete(member)
    session.flush()


def enrol(
    session: Session, organization_id: str, email: str, role: str, name: str | None = None
) -> Member:
    """An operator's act: make the user with ``email`` (created if new) a member with
    ``role``, or give an existing member that role. No invitation, no mail."""
    user = user_for_email(session, email, name)
    member = session.scalar(
        select(Member).where(Member.organizationId == organization_id, Member.userId == user.id)
    )
    if member is None:
        return add_member(session, organization_id, user.id, role)
    return change_role(session, organization_id, member.id, role, by_operator=True)


def first_owner(session: Session, organization_id: str) -> Member | None:
    """The oldest owner: the inviter of record for invitations made with an API key."""
    return session.scalars(
        select(Member)
        .where(Member.organizationId == organization_id, Member.role == OWNER_ROLE)
        .order_by(Member.createdAt, Member.id)
        .limit(1)
    ).first()
