"""Tenancy: organizations, members, invitations, teams, roles, API and operator keys, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, JSONDoc, Timestamps, id_column, one_of

#: Roles of a member in an organization (Better Auth organization plugin).
MEMBER_ROLES = ("owner", "admin", "member")
#: Lifecycle of an invitation.
INVITATION_STATUSES = ("pending", "accepted", "rejected", "canceled", "expired")
#: Who performed an audited action.
ACTOR_TYPES = ("apikey", "operator", "user", "system")


class Organization(Timestamps, Base):
    """A tenant. ``isActive`` false = disabled by an operator: nothing of it runs.

    ``maxSearches``, ``maxSources`` (distinct sources its searches follow) and
    ``maxDeliveriesPerDay`` (sent per UTC day) are limits an operator may set; NULL = none
    (:mod:`core.usage.limits`; never negative, checked where they are set).
    """

    __tablename__ = "organizations"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    logo: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    isActive: Mapped[bool] = mapped_column(default=True)
    #: Channel ids health alerts go to (``None``: every active channel that works).
    alertChannels: Mapped[list[str] | None] = mapped_column(JSONDoc)
    maxSearches: Mapped[int | None]
    maxSources: Mapped[int | None]
    maxDeliveriesPerDay: Mapped[int | None]


def org_fk() -> Mapped[str]:
    """``organizationId``: cascades when the organization is deleted."""
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)


class Member(Timestamps, Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("organizationId", "userId"), one_of("role", MEMBER_ROLES))

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    userId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")


class Team(Timestamps, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organizationId", "name"),)

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(255))


class TeamMember(Timestamps, Base):
    __tablename__ = "teamMembers"
    __table_args__ = (UniqueConstraint("teamId", "userId"),)

    id: Mapped[str] = id_column()
    teamId: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    userId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class Invitation(Timestamps, Base):
    """An invitation; the emailed token is stored only as ``tokenHash``."""

    __tablename__ = "invitations"
    __table_args__ = (one_of("role", MEMBER_ROLES), one_of("status", INVITATION_STATUSES))

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    inviterId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    teamId: Mapped[str | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    tokenHash: Mapped[str | None] = mapped_column(String(128), unique=True)
    expiresAt: Mapped[datetime]


class OrganizationRole(Timestamps, Base):
    """A custom role of an organization; ``permission`` is a JSON text like apikeys'."""

    __tablename__ = "organizationRoles"
    __table_args__ = (UniqueConstraint("organizationId", "role"),)

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    role: Mapped[str] = mapped_column(String(64), index=True)
    permission: Mapped[str] = mapped_column(Text)


class ApiKey(Timestamps, Base):
    """An organization's API key; ``key`` is SHA-256 base64url (Better Auth), never plaintext.

    Limits mean what Better Auth's fields mean: ``remaining`` requests left (NULL =
    unlimited), topped up to ``refillAmount`` every ``refillInterval`` ms since
    ``lastRefillAt``; at most ``rateLimitMax`` requests per ``rateLimitTimeWindow`` ms.
    """

    __tablename__ = "apikeys"
    __table_args__ = (
        CheckConstraint('"remaining" IS NULL OR "remaining" >= 0', name="remaining_not_negative"),
        CheckConstraint('"requestCount" >= 0', name="request_count_not_negative"),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    name: Mapped[str | None] = mapped_column(String(255))
    start: Mapped[str | None] = mapped_column(String(32))
    prefix: Mapped[str | None] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    refillInterval: Mapped[int | None]
    refillAmount: Mapped[int | None]
    lastRefillAt: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    rateLimitEnabled: Mapped[bool] = mapped_column(default=False)
    rateLimitTimeWindow: Mapped[int | None]
    rateLimitMax: Mapped[int | None]
    requestCount: Mapped[int] = mapped_column(default=0)
    remaining: Mapped[int | None]
    permissions: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    lastRequest: Mapped[datetime | None]
    expiresAt: Mapped[datetime | None]


class OperatorKey(Timestamps, Base):
    """A key of the people running newsmon (admin routes); hashed like ``apikeys``."""

    __tablename__ = "operatorKeys"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    start: Mapped[str | None] = mapped_column(String(32))
    prefix: Mapped[str | None] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    lastRequest: Mapped[datetime | None]
    expiresAt: Mapped[datetime | None]


class AuditLog(Timestamps, Base):
    """Who changed what. Operator actions across tenants have no ``organizationId``."""

    __tablename__ = "auditLogs"
    __table_args__ = (
        one_of("actorType", ACTOR_TYPES),
        Index(None, "createdAt"),
        Index(None, "organizationId", "id"),  # an organization's log, newest first, by pages
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    actorType: Mapped[str] = mapped_column(String(16))
    actorId: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    targetType: Mapped[str | None] = mapped_column(String(64))
    targetId: Mapped[str | None] = mapped_column(String(64), index=True)
    requestId: Mapped[str | None] = mapped_column(String(64))
    ipAddress: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None]
