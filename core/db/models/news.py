"""Saved news searches and what hangs off them: schedules, links, stories, feedback, models.

Child tables carry ``organizationId`` and reference ``news`` through the pair
(organizationId, newsId), so the database itself refuses a row whose organization
differs from its search's, and every tenant query can filter on the organization first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column, one_of
from core.db.models.ingest import key_of
from core.db.models.tenancy import org_fk

#: What a schedule does with fires missed while nothing ran.
CATCH_UP_POLICIES = ("once", "all", "skip")
#: Labels of relevance feedback on a story.
FEEDBACK_LABELS = ("relevant", "not_relevant")


def news_fk() -> ForeignKeyConstraint:
    """(organizationId, newsId) -> news: same organization, cascade on delete."""
    return ForeignKeyConstraint(
        ["organizationId", "newsId"],
        ["news.organizationId", "news.id"],
        ondelete="CASCADE",
    )


class News(Timestamps, Base):
    """A saved search: query and sources, relevance and wait settings (validated JSON)."""

    __tablename__ = "news"
    __table_args__ = (UniqueConstraint("organizationId", "id"),)

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(String(255))
    searchQuery: Mapped[dict[str, Any]] = mapped_column(default=dict)
    relevanceSettings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    waitSettings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    isActive: Mapped[bool] = mapped_column(default=True)
    lastRun: Mapped[datetime | None]
    lastSent: Mapped[datetime | None]
    nextRun: Mapped[datetime | None]


class Schedule(Timestamps, Base):
    """A cron schedule of a search, in an IANA time zone; ``nextRun`` is when it fires."""

    __tablename__ = "schedules"
    __table_args__ = (
        news_fk(),
        one_of("catchUp", CATCH_UP_POLICIES),
        Index(None, "isActive", "nextRun"),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    cronExpr: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    catchUp: Mapped[str] = mapped_column(String(8), default="once")
    isActive: Mapped[bool] = mapped_column(default=True)
    nextRun: Mapped[datetime | None]
    lastSuccess: Mapped[datetime | None]
    lastFailure: Mapped[datetime | None]
    errorDetails: Mapped[dict[str, Any] | None]


class NewsSource(Timestamps, Base):
    """A search follows a shared source."""

    __tablename__ = "newsSources"
    __table_args__ = (news_fk(), UniqueConstraint("newsId", "sourceId"))

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    sourceId: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)


class NewsChannel(Timestamps, Base):
    """A search delivers to a channel; both belong to the same organization (enforced)."""

    __tablename__ = "newsChannels"
    __table_args__ = (
        news_fk(),
        ForeignKeyConstraint(
            ["organizationId", "channelId"],
            ["channels.organizationId", "channels.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("newsId", "channelId"),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    channelId: Mapped[str] = mapped_column(index=True)


class Story(Timestamps, Base):
    """A candidate story of one search; unique per search and URL key.

    The seed marks ``url`` globally unique; two organizations may follow the same story,
    and one article comes under many URLs, so uniqueness is (newsId, urlKey) instead:
    ``url`` is the article's URL as published (shown to readers), ``urlKey`` its dedupe
    key. ``isFiltered`` stories scored below the threshold: kept with their score and
    explanation, never delivered. ``clusterId`` names the first story of its
    near-duplicate cluster; ``duplicateOfId`` the story it is sent with as "also reported
    by" instead of on its own (see core.ingest.clusters).
    """

    __tablename__ = "stories"
    __table_args__ = (
        news_fk(),
        UniqueConstraint("newsId", "urlKey"),
        UniqueConstraint("organizationId", "id"),
        Index(None, "newsId", "foundAt"),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    entryId: Mapped[str | None] = mapped_column(
        ForeignKey("entries.id", ondelete="SET NULL"), index=True
    )
    clusterId: Mapped[str | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    duplicateOfId: Mapped[str | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(String(2048))
    urlKey: Mapped[str] = mapped_column(String(2048), default=key_of("url"))
    snippet: Mapped[str | None] = mapped_column(Text)
    sourceName: Mapped[str | None] = mapped_column(String(255))
    publishedAt: Mapped[datetime | None]
    relevanceScore: Mapped[float] = mapped_column(default=0.0)
    explanation: Mapped[dict[str, Any] | None]
    isFiltered: Mapped[bool] = mapped_column(default=False)
    wasDelivered: Mapped[bool] = mapped_column(default=False)
    foundAt: Mapped[datetime] = mapped_column(index=True)


class StoryFeedback(Timestamps, Base):
    """A relevance label on a story; one per story (the latest wins)."""

    __tablename__ = "storyFeedback"
    __table_args__ = (
        news_fk(),
        ForeignKeyConstraint(
            ["organizationId", "storyId"],
            ["stories.organizationId", "stories.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("storyId"),
        one_of("label", FEEDBACK_LABELS),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    storyId: Mapped[str] = mapped_column()
    label: Mapped[str] = mapped_column(String(16))
    actorId: Mapped[str | None] = mapped_column(String(64))


class RelevanceModel(Timestamps, Base):
    """A search's trained feedback classifier, versioned; never shared across searches."""

    __tablename__ = "relevanceModels"
    __table_args__ = (news_fk(), UniqueConstraint("newsId", "version"))

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    version: Mapped[int]
    model: Mapped[bytes] = mapped_column(LargeBinary)
    labelCount: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any] | None]
    note: Mapped[str | None] = mapped_column(Text)


class FeedToken(Timestamps, Base):
    """The secret of a search's public feed (``/news/{newsId}/feed.xml?token=``).

    One per search: rotating replaces the hash, revoking deletes the row. Only the hash
    is stored (as for API keys); ``start`` is kept to recognise it.
    """

    __tablename__ = "feedTokens"
    __table_args__ = (news_fk(), UniqueConstraint("newsId"))

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column()
    tokenHash: Mapped[str] = mapped_column(String(64), unique=True)
    start: Mapped[str] = mapped_column(String(16))
