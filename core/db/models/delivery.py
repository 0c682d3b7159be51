"""Channels, frozen digests and per-channel delivery records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column, one_of
from core.db.models.news import news_fk
from core.db.models.tenancy import org_fk

#: Channel types; ``file`` writes digests to a local folder (embedded/demo use).
CHANNEL_TYPES = ("slack", "email", "webhook", "apprise", "file")
#: Channel health: ``failing`` after consecutive failures, ``broken`` when the target
#: says it is gone (410, Slack ``no_service``): no more attempts until fixed.
CHANNEL_STATUSES = ("ok", "failing", "broken")
#: pending -> sending -> sent | failed | unknown (timed out mid-send).
DELIVERY_STATES = ("pending", "sending", "sent", "failed", "unknown")
#: What one attempt achieved (:class:`core.delivery.outcome.Outcome` kinds).
ATTEMPT_OUTCOMES = ("sent", "failed", "unknown")


class Channel(Timestamps, Base):
    """Where an organization receives digests; secrets inside ``config`` are encrypted."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("organizationId", "id"),
        one_of("type", CHANNEL_TYPES),
        one_of("status", CHANNEL_STATUSES),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    isActive: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    consecutiveFailures: Mapped[int] = mapped_column(default=0)
    lastError: Mapped[str | None] = mapped_column(Text)


class Digest(Timestamps, Base):
    """A batch of stories of one search, frozen at creation; ``digestKey`` names its period."""

    __tablename__ = "digests"
    __table_args__ = (
        news_fk(),
        UniqueConstraint("newsId", "digestKey"),
        UniqueConstraint("organizationId", "id"),
        Index(None, "createdAt"),  # retention
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    digestKey: Mapped[str] = mapped_column(String(128))
    storyCount: Mapped[int] = mapped_column(default=0)
    periodStart: Mapped[datetime | None]
    periodEnd: Mapped[datetime | None]


class DigestStory(Timestamps, Base):
    __tablename__ = "digestStories"
    __table_args__ = (UniqueConstraint("digestId", "storyId"),)

    id: Mapped[str] = id_column()
    digestId: Mapped[str] = mapped_column(ForeignKey("digests.id", ondelete="CASCADE"), index=True)
    storyId: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)


class Delivery(Timestamps, Base):
    """One digest to one channel: unique per (channel, digest), so nothing is sent twice.

    The delivery id doubles as the ``webhook-id`` every attempt carries.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organizationId", "channelId"],
            ["channels.organizationId", "channels.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["organizationId", "digestId"],
            ["digests.organizationId", "digests.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("channelId", "digestId"),
        one_of("state", DELIVERY_STATES),
        Index(None, "state", "nextAttemptAt"),
        Index(None, "sentAt"),  # the metrics' "sent in the last hour"
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    channelId: Mapped[str] = mapped_column(index=True)
    digestId: Mapped[str] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    nextAttemptAt: Mapped[datetime | None]
    leaseUntil: Mapped[datetime | None]
    lastError: Mapped[str | None] = mapped_column(Text)
    lastStatusCode: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(Text)
    sentAt: Mapped[datetime | None]
    #: Why a pending delivery waits (its organization's daily limit), until it is sent.
    heldReason: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Timestamps, Base):
    """One recorded attempt of a delivery, written with its outcome (same transaction).

    ``attempt`` is the claim's number within the delivery's budget (a replay starts it at
    1 again; ids keep the order). ``statusCode`` is the HTTP status or SMTP reply code;
    ``response`` and ``error`` are the outcome's texts, bounded and with the channel's
    secrets already removed; ``durationMs`` is None when nothing was sent (a broken
    channel, a worker lost mid-send).
    """

    __tablename__ = "deliveryAttempts"
    __table_args__ = (one_of("outcome", ATTEMPT_OUTCOMES),)

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    deliveryId: Mapped[str] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(16))
    statusCode: Mapped[int | None]
    durationMs: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    startedAt: Mapped[datetime]


class DigestLinkUse(Timestamps, Base):
    """A one-click digest link that was used (``tokenHash``: SHA-256 of its token): each
    works once, so a replayed link changes nothing (see core.delivery.link_actions).
    Kept until the link would have expired anyway (``expiresAt``)."""

    __tablename__ = "digestLinkUses"

    id: Mapped[str] = id_column()
    tokenHash: Mapped[str] = mapped_column(String(64), unique=True)
    organizationId: Mapped[str] = org_fk()
    purpose: Mapped[str] = mapped_column(String(16))
    expiresAt: Mapped[datetime] = mapped_column(index=True)
