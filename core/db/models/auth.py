"""Better Auth core tables: users, sessions, accounts, verifications, passkeys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    emailVerified: Mapped[bool] = mapped_column(default=False)
    image: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(64))
    banned: Mapped[bool] = mapped_column(default=False)
    banReason: Mapped[str | None] = mapped_column(Text)
    banExpires: Mapped[datetime | None]


class Session(Timestamps, Base):
    __tablename__ = "sessions"

    id: Mapped[str] = id_column()
    userId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(255), unique=True)
    expiresAt: Mapped[datetime]
    ipAddress: Mapped[str | None] = mapped_column(Text)
    userAgent: Mapped[str | None] = mapped_column(Text)
    impersonatedBy: Mapped[str | None] = mapped_column(Text)
    activeOrganizationId: Mapped[str | None] = mapped_column(Text)
    activeTeamId: Mapped[str | None] = mapped_column(Text)


class Account(Timestamps, Base):
    __tablename__ = "accounts"

    id: Mapped[str] = id_column()
    userId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    accountId: Mapped[str] = mapped_column(String(255))
    providerId: Mapped[str] = mapped_column(String(255))
    accessToken: Mapped[str | None] = mapped_column(Text)
    refreshToken: Mapped[str | None] = mapped_column(Text)
    idToken: Mapped[str | None] = mapped_column(Text)
    tokenExpiresAt: Mapped[datetime | None]
    scope: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)


class Verification(Timestamps, Base):
    __tablename__ = "verifications"

    id: Mapped[str] = id_column()
    identifier: Mapped[str] = mapped_column(String(255), index=True)
    value: Mapped[str] = mapped_column(Text)
    expiresAt: Mapped[datetime]


class Passkey(Timestamps, Base):
    __tablename__ = "passkeys"

    id: Mapped[str] = id_column()
    userId: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    publicKey: Mapped[str] = mapped_column(Text)
    credentialID: Mapped[str] = mapped_column(Text, index=True)
    counter: Mapped[int] = mapped_column(default=0)
    deviceType: Mapped[str] = mapped_column(String(64))
    backedUp: Mapped[bool] = mapped_column(default=False)
    transports: Mapped[str | None] = mapped_column(String(255))
