"""Shared, public ingest data: fetched sources and their parsed entries (no tenant)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column, one_of
from core.feeds.canonical_url import canonicalize

#: Kinds of source: a feed URL, or a news-search provider that builds one from a query.
SOURCE_TYPES = ("feed", "google_news", "bing_news", "hackernews", "reddit", "gdelt")
#: Health of a source: never fetched, last fetch fine, failing (backing off).
SOURCE_STATUSES = ("new", "ok", "failing")


def key_of(column: str) -> Callable[[DefaultExecutionContext], str]:
    """Column default: the URL key of ``column``'s value (the value itself if it has none),
    for rows inserted without one; the ingest path always sets the key itself."""

    def default(context: DefaultExecutionContext) -> str:
        url = str(context.get_current_parameters()[column])  # type: ignore[no-untyped-call]
        return canonicalize(url) or url

    return default


class Source(Timestamps, Base):
    """One fetched URL, shared by every search of every organization that follows it."""

    __tablename__ = "sources"
    __table_args__ = (
        one_of("type", SOURCE_TYPES),
        one_of("status", SOURCE_STATUSES),
        Index(None, "status", "nextFetchAt"),
    )

    id: Mapped[str] = id_column()
    type: Mapped[str] = mapped_column(String(16), default="feed")
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(512))
    lastModified: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="new")
    failureCount: Mapped[int] = mapped_column(default=0)
    lastStatusCode: Mapped[int | None]
    lastError: Mapped[dict[str, Any] | None]
    lastFetchedAt: Mapped[datetime | None]
    lastSuccessAt: Mapped[datetime | None]
    nextFetchAt: Mapped[datetime | None] = mapped_column(index=True)
    #: A refresh message was sent and is expected before this; past it, the source clock
    #: sends another (the broker may have lost the first).
    queuedUntil: Mapped[datetime | None]
    #: Seconds between fetches the source's own clock last settled on (publishing rate,
    #: bounds, Cache-Control); kept for fetches that bring no dates (304, undated items).
    fetchInterval: Mapped[int | None]


class Entry(Timestamps, Base):
    """A parsed feed item, stored once per source and URL key.

    ``url`` is the item's link as the feed gives it (a FeedBurner redirect, say);
    ``canonicalUrl`` the article's own URL, shown to readers and the source of its host
    (``feedburner:origLink`` or ``rel="canonical"`` first, tracking removed);
    ``urlKey`` the dedupe key (:func:`core.feeds.canonical_url.canonicalize`);
    ``guidKey`` the item's id when it is unique across feeds (``guid_key``), so a copy
    under another link is recognised.
    """

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("sourceId", "urlKey"),
        Index(None, "createdAt"),  # retention, and the newest entries of a stream
    )

    id: Mapped[str] = id_column()
    sourceId: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    urlKey: Mapped[str] = mapped_column(String(2048), default=key_of("canonicalUrl"))
    canonicalUrl: Mapped[str] = mapped_column(String(2048))
    url: Mapped[str] = mapped_column(String(2048))
    guid: Mapped[str | None] = mapped_column(String(2048))
    guidKey: Mapped[str | None] = mapped_column(String(2048), index=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(512))
    language: Mapped[str | None] = mapped_column(String(16))
    publishedAt: Mapped[datetime | None] = mapped_column(index=True)
    #: Why ``publishedAt`` is the fetch time instead of the feed's date (misread, future).
    dateIssue: Mapped[str | None] = mapped_column(Text)
    contentHash: Mapped[str] = mapped_column(String(64), index=True)
