"""JSON answers of news-search APIs read as feeds: Hacker News (Algolia) and GDELT DOC.

:func:`core.feeds.parse_feed` hands a JSON object here when it is neither JSON Feed nor
RSS-in-JSON: ``{"hits": [...]}`` is Algolia's HN search, ``{"articles": [...]}`` GDELT's
``mode=artlist&format=json``. Both become the same :class:`ParsedFeed` as any feed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.feeds.canonical_url import resolve_http_url
from core.feeds.model import (
    MAX_ENTRIES_PER_FEED,
    FeedParseError,
    ParsedEntry,
    ParsedFeed,
    build_entry,
    build_feed,
    iso_to_utc,
    text_or_none,
)

#: Where a Hacker News item without its own link (Ask HN, Show HN text) lives.
HN_ITEM_URL = "https://news.ycombinator.com/item?id={}"
#: GDELT's ``seendate`` format (UTC).
GDELT_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: GDELT names languages ("English"); kept within the stored column's width.
MAX_GDELT_LANGUAGE = 16


def parse_search_api(doc: dict[str, Any], source_type: str | None = None) -> ParsedFeed | None:
    """The feed of a known search-API answer, or ``None`` if ``doc`` is none of them.

    GDELT answers ``{}`` when nothing matched: an empty feed, but only for a source we
    know is GDELT (anywhere else ``{}`` is "not a feed").
    """
    if isinstance(doc.get("hits"), list):
        return hackernews_feed(doc)
    if isinstance(doc.get("articles"), list) or (doc == {} and source_type == "gdelt"):
        return gdelt_feed(doc)
    return None


def hackernews_feed(doc: dict[str, Any]) -> ParsedFeed:
    """Algolia ``/api/v1/search(_by_date)``: hits with title, url, story_text, author."""
    hits: list[Any] = doc.get("hits") or []
    entries: list[ParsedEntry] = []
    for hit in hits[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(hit, dict):
            continue
        object_id = hit.get("objectID") or hit.get("story_id")
        discussion = HN_ITEM_URL.format(object_id) if object_id else None
        url = resolve_http_url(text_or_none(hit.get("url")), "") or discussion
        entries.append(
            build_entry(
                url=url,
                canonical_source=url,
                title_html=text_or_none(hit.get("title")) or text_or_none(hit.get("story_title")),
                summary_html=text_or_none(hit.get("story_text")),
                author=text_or_none(hit.get("author")),
                published=iso_to_utc(text_or_none(hit.get("created_at")))
                or _epoch_to_utc(hit.get("created_at_i")),
                guid=discussion,
                language=None,
            )
        )
    query = text_or_none(doc.get("query"))
    return build_feed(
        title_html=f"Hacker News: {query}" if query else "Hacker News",
        link="https://news.ycombinator.com/",
        kind="json",
        bozo_reason=None,
        entries=entries,
        total=len(hits),
    )


def gdelt_feed(doc: dict[str, Any]) -> ParsedFeed:
    """GDELT DOC 2.0 ``artlist``: articles with url, title, seendate, domain, language."""
    articles: list[Any] = doc.get("articles") or []
    entries: list[ParsedEntry] = []
    for article in articles[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(article, dict):
            continue
        url = resolve_http_url(text_or_none(article.get("url")), "")
        entries.append(
            build_entry(
                url=url,
                canonical_source=url,
                title_html=text_or_none(article.get("title")),
                summary_html=None,  # artlist carries no text
                author=text_or_none(article.get("domain")),
                published=_gdelt_date(text_or_none(article.get("seendate"))),
                guid=url,
                language=(text_or_none(article.get("language")) or "")[:MAX_GDELT_LANGUAGE] or None,
            )
        )
    if not isinstance(articles, list):
        raise FeedParseError("GDELT answer without an articles list")
    return build_feed(
        title_html="GDELT",
        link=None,
        kind="json",
        bozo_reason=None,
        entries=entries,
        total=len(articles),
    )


def _gdelt_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, GDELT_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return iso_to_utc(value)


def _epoch_to_utc(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**33:
        return datetime.fromtimestamp(value, UTC)
    return None
