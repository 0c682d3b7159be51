"""JSON feeds: JSON Feed 1.x and RSS-in-JSON, read with the json module (size-capped);
other JSON objects go to the news-search API adapters."""

from __future__ import annotations

import json
from typing import Any

from core.feeds.canonical_url import resolve_http_url
from core.feeds.model import (
    MAX_ENTRIES_PER_FEED,
    MAX_LANGUAGE_CHARS,
    FeedParseError,
    ParsedFeed,
    build_entry,
    build_feed,
    describe_error,
    iso_to_utc,
    rfc822_to_utc,
    text_or_none,
)
from core.feeds.search_api import parse_search_api
from core.feeds.text import one_line

#: Largest JSON document parsed, in bytes (the fetcher caps bodies too; this keeps the
#: pure function safe on its own).
MAX_JSON_FEED_BYTES = 10_000_000


def parse_json(body: bytes, base_url: str | None, source_type: str | None) -> ParsedFeed:
    if len(body) > MAX_JSON_FEED_BYTES:
        raise FeedParseError(f"JSON document larger than {MAX_JSON_FEED_BYTES} bytes")
    try:
        doc = json.loads(body)  # detects UTF-8/16/32 itself, BOM included
    except RecursionError:
        # The C scanner stops at the interpreter's recursion limit: depth is bounded.
        raise FeedParseError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise FeedParseError(f"invalid JSON ({describe_error(exc)})") from None
    if not isinstance(doc, dict):
        raise FeedParseError("JSON document is not an object")
    base = base_url or ""
    version = doc.get("version")
    if isinstance(version, str) and version.startswith("https://jsonfeed.org/version/"):
        return _json_feed(doc, base)
    rss = doc.get("rss")
    channel = rss.get("channel") if isinstance(rss, dict) else None
    if isinstance(channel, dict):
        return _rss_in_json(channel, base)
    if isinstance(doc.get("items"), list):
        # JSON Feed without (or with a misspelt) version: read it, but say so.
        return _json_feed(doc, base, bozo_reason="JSON Feed without a jsonfeed.org version")
    answer = parse_search_api(doc, source_type)
    if answer is not None:
        return answer
    raise FeedParseError("JSON document is neither JSON Feed nor RSS-in-JSON nor a search API's")


def _json_feed(doc: dict[str, Any], base: str, bozo_reason: str | None = None) -> ParsedFeed:
    items = doc.get("items")
    items = items if isinstance(items, list) else []
    feed_author = _json_author(doc)
    language = one_line(text_or_none(doc.get("language")), MAX_LANGUAGE_CHARS)
    entries = []
    for item in items[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(item, dict):
            continue
        # A link blog's item is about ``external_url``; Atom/RSS put that link in the
        # alternate link too, so both formats of one feed dedupe to the same story.
        url = resolve_http_url(
            text_or_none(item.get("external_url")) or text_or_none(item.get("url")), base
        )
        summary = text_or_none(item.get("summary")) or text_or_none(item.get("content_html"))
        summary = summary or text_or_none(item.get("content_text"))
        published = text_or_none(item.get("date_published")) or text_or_none(
            item.get("date_modified")
        )
        guid = item.get("id")
        entries.append(
            build_entry(
                url=url,
                canonical_source=url,
                title_html=text_or_none(item.get("title")),
                summary_html=summary,
                author=_json_author(item) or feed_author,
                published=iso_to_utc(published),
                guid=str(guid) if isinstance(guid, (str, int)) else None,
                language=one_line(text_or_none(item.get("language")), MAX_LANGUAGE_CHARS)
                or language,
            )
        )
    return build_feed(
        title_html=text_or_none(doc.get("title")),
        link=resolve_http_url(text_or_none(doc.get("home_page_url")), base),
        kind="json",
        bozo_reason=bozo_reason,
        entries=entries,
        total=len(items),
    )


def _rss_in_json(channel: dict[str, Any], base: str) -> ParsedFeed:
    """Dave Winer's RSS-in-JSON: ``{"rss": {"channel": {..., "item": [...]}}}``."""
    items = channel.get("item")
    items = [items] if isinstance(items, dict) else items if isinstance(items, list) else []
    language = one_line(text_or_none(channel.get("language")), MAX_LANGUAGE_CHARS)
    entries = []
    for item in items[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(item, dict):
            continue
        url = resolve_http_url(text_or_none(item.get("link")), base)
        entries.append(
            build_entry(
                url=url,
                canonical_source=url,
                title_html=text_or_none(item.get("title")),
                summary_html=text_or_none(item.get("description")),
                author=text_or_none(item.get("author")),
                published=rfc822_to_utc(text_or_none(item.get("pubDate"))),
                guid=text_or_none(item.get("guid")),
                language=language,
            )
        )
    return build_feed(
        title_html=text_or_none(channel.get("title")),
        link=resolve_http_url(text_or_none(channel.get("link")), base),
        kind="json",
        bozo_reason=None,
        entries=entries,
        total=len(items),
    )


def _json_author(obj: dict[str, Any]) -> str | None:
    """JSON Feed 1.1 ``authors[0].name``, else 1.0 ``author.name``."""
    authors = obj.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    return text_or_none(author.get("name")) if isinstance(author, dict) else None
