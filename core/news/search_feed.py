"""A search as a feed: its newest stories as Atom 1.0, RSS 2.0 or JSON Feed 1.1.

The stories are the ones the search delivers or would deliver: not filtered below its
threshold and not a near-duplicate sent along with another story. Atom and RSS are
written by ``feedgenerator`` (Django's feed writer, standalone); JSON Feed is a plain
document built here after https://www.jsonfeed.org/version/1.1/.

Ids are tag URIs (RFC 4151) on the story and search ids, so they stay the same whatever
address the feed is served from. :func:`feed_etag` names one version of a feed from its
inputs alone, so a conditional request is answered without rendering.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import feedgenerator
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import News, Story

#: Newest stories a feed lists (feed readers keep what they have already seen).
FEED_MAX_ITEMS = 50
#: Tagging entity and date of the tag URIs of feeds and their items.
TAG_AUTHORITY = "tag:newsmon,2026"
#: The feed formats: Atom 1.0 and RSS 2.0 (``feed.xml``), JSON Feed 1.1 (``feed.json``).
FeedFormat = Literal["atom", "rss", "json"]
#: Content type of each format.
CONTENT_TYPES: dict[str, str] = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


@dataclass(frozen=True)
class FeedLinks:
    """Where the feed is read (``feed_url``, with its token) and the service's home."""

    feed_url: str
    home_url: str


def feed_stories(
    session: Session, organization_id: str, news_id: str, limit: int = FEED_MAX_ITEMS
) -> list[Story]:
    """The search's newest stories that it delivers or would (newest found first)."""
    query = (
        select(Story)
        .where(
            Story.organizationId == organization_id,
            Story.newsId == news_id,
            Story.isFiltered.is_(False),
            Story.duplicateOfId.is_(None),
        )
        .order_by(Story.foundAt.desc(), Story.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def feed_etag(news: News, stories: Sequence[Story], fmt: FeedFormat, links: FeedLinks) -> str:
    """A strong ETag of the feed these inputs render to (same inputs, same bytes)."""
    parts = [fmt, links.feed_url, links.home_url, news.id, news.name, _iso(news.updatedAt)]
    parts += [f"{s.id}@{_iso(s.updatedAt)}" for s in stories]
    digest = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
    return f'"{digest[:32]}"'


def render_feed(news: News, stories: Sequence[Story], fmt: FeedFormat, links: FeedLinks) -> bytes:
    """The feed document of ``news`` in ``fmt``."""
    if fmt == "json":
        return json.dumps(_json_feed(news, stories, links), ensure_ascii=False).encode("utf-8")
    cls = _AtomFeed if fmt == "atom" else _RssFeed
    feed = cls(
        title=news.name,
        link=links.home_url,
        description=_description(news),
        feed_url=links.feed_url,
        feed_guid=f"{TAG_AUTHORITY}:news/{news.id}",
        author_name="newsmon",
        updated_when_empty=news.updatedAt,
    )
    for story in stories:
        feed.add_item(
            title=story.title,
            link=story.url,
            description=story.snippet or story.title,
            author_name=story.sourceName,
            pubdate=_published(story),
            updateddate=_updated(story),
            unique_id=_item_id(story),
            unique_id_is_permalink=False,
        )
    written: str = feed.writeString("utf-8")
    return written.encode("utf-8")


class _UpdatedWhenEmpty:
    """A feed with no items is as new as its search (not "now"), so it renders the same
    bytes each time and its ETag holds."""

    def __init__(self, *args: Any, updated_when_empty: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._updated_when_empty = updated_when_empty

    def latest_post_date(self) -> datetime:
        if not self.items:  # type: ignore[attr-defined]
            return self._updated_when_empty
        return super().latest_post_date()  # type: ignore[misc,no-any-return]


class _AtomFeed(_UpdatedWhenEmpty, feedgenerator.Atom1Feed):  # type: ignore[misc]
    pass


class _RssFeed(_UpdatedWhenEmpty, feedgenerator.Rss201rev2Feed):  # type: ignore[misc]
    pass


def _json_feed(news: News, stories: Sequence[Story], links: FeedLinks) -> dict[str, Any]:
    items = []
    for story in stories:
        item: dict[str, Any] = {
            "id": _item_id(story),
            "url": story.url,
            "title": story.title,
            "content_text": story.snippet or story.title,
            "date_published": _iso(_published(story)),
            "date_modified": _iso(_updated(story)),
        }
        if story.sourceName:
            item["authors"] = [{"name": story.sourceName}]
        items.append(item)
    return {
        "version": JSON_FEED_VERSION,
        "title": news.name,
        "home_page_url": links.home_url,
        "feed_url": links.feed_url,
        "description": _description(news),
        "authors": [{"name": "newsmon"}],
        "items": items,
    }


def _description(news: News) -> str:
    query = str((news.searchQuery or {}).get("query") or "").strip()
    return f"Stories found by the search {news.name!r}" + (f": {query}" if query else "")


def _item_id(story: Story) -> str:
    return f"{TAG_AUTHORITY}:story/{story.id}"


def _published(story: Story) -> datetime:
    return story.publishedAt or story.foundAt


def _updated(story: Story) -> datetime:
    """When the story reached the search (never before its publication)."""
    return max(story.foundAt, _published(story))


def _iso(when: datetime) -> str:
    return when.isoformat()
