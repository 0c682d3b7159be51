"""Feed bytes -> :class:`ParsedFeed`: RSS 0.9x/1.0/2.0, Atom, RDF and JSON Feed. Pure.

XML goes to ``feedparser.parse(io.BytesIO(body), ...)`` (never a ``str``: feedparser would
take it for a path or URL) with its HTML sanitizer and relative-URI rewriting switched off:
on the corpus those two are about half of feedparser's time, and newsmon shows only plain
text, which :func:`core.feeds.text.html_to_text` produces with nh3. The entry link is
resolved against the feed/base URL here (``content-location`` tells feedparser the base;
``urljoin`` catches the rest). feedparser reads XML with expat through SAX, which fetches
no external entity or DTD; a DOCTYPE that declares entities is removed before parsing
(billion laughs, XXE), so no entity of the document's own is ever expanded.

JSON (chosen from the content, never the file name) is JSON Feed 1.x or RSS-in-JSON,
read with the json module.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import feedparser

from core.errors import NewsmonError
from core.feeds.canonical_url import canonicalize, resolve_http_url
from core.feeds.text import (
    MAX_TITLE_CHARS,
    collapse_whitespace,
    html_to_text,
    one_line,
    valid_unicode,
)

#: Entries kept per feed document; later ones are dropped (feeds list newest first).
MAX_ENTRIES_PER_FEED = 500
#: Largest JSON document parsed, in bytes (the fetcher caps bodies too; this keeps the
#: pure function safe on its own).
MAX_JSON_FEED_BYTES = 10_000_000
#: Longest author, guid and language values kept, in characters.
MAX_AUTHOR_CHARS = 200
MAX_GUID_CHARS = 1000
MAX_LANGUAGE_CHARS = 35
#: Longest bozo reason kept, in characters.
MAX_BOZO_REASON_CHARS = 300
#: Bytes looked at to tell an HTML page from a broken feed in the "not a feed" message.
SNIFF_BYTES = 1024

FeedKind = Literal["rss", "atom", "rdf", "json"]

#: feedparser ``version`` values of RSS 0.90 and 1.0, both RDF documents.
_RDF_VERSIONS = frozenset({"rss090", "rss10"})
#: A DOCTYPE declaration with its internal subset, quote- and comment-aware so that ``>``
#: or ``]`` inside an entity value does not end it early. No nested quantifiers: linear.
_DOCTYPE = re.compile(
    rb"<!DOCTYPE(?:\"[^\"]*\"|'[^']*'|[^\[>\"'])*"
    rb"(?:\[(?:\"[^\"]*\"|'[^']*'|<!--.*?-->|[^\]\"'])*\])?\s*>",
    re.DOTALL,
)
#: The first element's start tag; a DOCTYPE must come before it.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
#: Leading bytes skipped when sniffing: UTF-8 BOM and whitespace.
_LEADING = b"\xef\xbb\xbf \t\r\n"


class FeedParseError(NewsmonError):
    """The body is not a feed (HTML page, empty body, broken JSON); message "not a feed: ..."."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a feed: {reason}")


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry, as plain text, ready for matching and storage.

    Parameters:
      url: the entry's own link, absolute http(s), or ``None`` when it has none.
      canonical_url: dedupe key from :func:`canonicalize` of the entry's canonical link
        (``rel="canonical"``, ``feedburner:origLink``) or of ``url``; ``None`` if not http(s).
      title, summary: plain text, whitespace collapsed, capped in length.
      published: publication (else update) time, aware UTC, ``None`` if absent or invalid.
      content_hash: SHA-256 hex of title and summary, to notice edited entries.
    """

    url: str | None
    canonical_url: str | None
    title: str
    summary: str
    author: str | None
    published: datetime | None
    guid: str | None
    language: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed document.

    Parameters:
      bozo_reason: why the document was not clean (not well-formed, charset override), or
        ``None``; the entries are still usable.
      entries_dropped: entries past :data:`MAX_ENTRIES_PER_FEED`, not parsed further.
    """

    title: str
    link: str | None
    kind: FeedKind
    bozo_reason: str | None
    entries: tuple[ParsedEntry, ...]
    entries_dropped: int = 0


def parse_feed(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    base_url: str | None = None,
    *,
    source_type: str | None = None,
) -> ParsedFeed:
    """Parse a fetched feed body; ``headers`` are the response headers, ``base_url`` its URL.

    ``source_type`` (``sources.type``) only settles answers that are ambiguous alone.

    Raises :class:`FeedParseError` when the body is not a feed at all.
    """
    first = body.lstrip(_LEADING)[:1]
    if not first:
        raise FeedParseError("empty body")
    if first == b"{":
        return _parse_json(body, base_url, source_type)
    return _parse_xml(body, headers or {}, base_url)


# --- XML: feedparser -------------------------------------------------------------------


def _parse_xml(body: bytes, headers: Mapping[str, str], base_url: str | None) -> ParsedFeed:
    body = _without_entity_declarations(body)
    response_headers = {key.lower(): value for key, value in headers.items()}
    if base_url:
        response_headers.setdefault("content-location", base_url)
    data = feedparser.parse(
        io.BytesIO(body),
        response_headers=response_headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    version = data.get("version") or ""
    if not version and not data.entries:
        raise FeedParseError(_why_not_xml_feed(body, data))
    feed = data.feed
    base = base_url or ""
    feed_language = one_line(feed.get("language"), MAX_LANGUAGE_CHARS)
    raw_entries = data.entries
    entries = [_xml_entry(raw, base, feed_language) for raw in raw_entries[:MAX_ENTRIES_PER_FEED]]
    return _feed(
        title_html=feed.get("title"),
        link=resolve_http_url(feed.get("link"), base),
        kind=_xml_kind(version),
        bozo_reason=_bozo_reason(data, "content-type" in response_headers),
        entries=entries,
        total=len(raw_entries),
    )


def _without_entity_declarations(body: bytes) -> bytes:
    """``body`` without a DOCTYPE that declares entities (billion laughs, XXE).

    feedparser strips ``<!ENTITY`` declarations only at the start of a line, so a one-line
    billion-laughs document reaches expat, which expands 8 MiB before its amplification
    guard fires (measured: 0.6 s, +68 MB RSS). Feeds never need their own entities.
    """
    if b"<!ENTITY" not in body:
        return body
    start = body.find(b"<!DOCTYPE")
    if start < 0 or _FIRST_ELEMENT.search(body, 0, start):
        return body
    # One anchored attempt (not a search): linear even for "<!DOCTYPE[" repeated.
    doctype = _DOCTYPE.match(body, start)
    if doctype is None:
        return body
    return body[: doctype.start()] + body[doctype.end() :]


def _xml_kind(version: str) -> FeedKind:
    if version.startswith("atom"):
        return "atom"
    if version in _RDF_VERSIONS:
        return "rdf"
    # rss091u/rss092/rss20/..., and entries found without a recognised root: RSS-like.
    return "rss"


def _why_not_xml_feed(body: bytes, data: Any) -> str:
    head = body[:SNIFF_BYTES].lstrip(_LEADING).lower()
    if b"<html" in head or b"<!doctype html" in head:
        return "an HTML page"
    if data.get("bozo"):
        return f"no RSS, Atom or RDF document ({_describe(data.get('bozo_exception'))})"
    return "no RSS, Atom or RDF root element"


def _bozo_reason(data: Any, had_content_type: bool) -> str | None:
    exc = data.get("bozo_exception") if data.get("bozo") else None
    if exc is None:
        return None
    # Without a Content-Type header feedparser always complains about it; that is noise
    # about the call, not about the document.
    if isinstance(exc, feedparser.NonXMLContentType) and not had_content_type:
        return None
    return _describe(exc)


def _describe(exc: object) -> str:
    text = collapse_whitespace(valid_unicode(f"{type(exc).__name__}: {exc}"))
    return text[:MAX_BOZO_REASON_CHARS]


def _xml_entry(raw: Any, base: str, feed_language: str | None) -> ParsedEntry:
    url = resolve_http_url(raw.get("link"), base)
    preferred = _canonical_link(raw.get("links") or ()) or raw.get("feedburner_origlink")
    summary_html = raw.get("summary") or _first_content(raw.get("content"))
    detail = raw.get("title_detail") or raw.get("summary_detail") or {}
    return _entry(
        url=url,
        canonical_source=resolve_http_url(preferred, base) or url,
        title_html=raw.get("title"),
        summary_html=summary_html,
        author=raw.get("author"),
        # dict.get: FeedParserDict.get maps missing keys to others with a DeprecationWarning.
        published=_struct_to_utc(
            dict.get(raw, "published_parsed")
            or dict.get(raw, "updated_parsed")
            or dict.get(raw, "created_parsed")
        ),
        guid=raw.get("id"),
        language=one_line(detail.get("language"), MAX_LANGUAGE_CHARS) or feed_language,
    )


def _canonical_link(links: Iterable[Any]) -> str | None:
    for link in links:
        if isinstance(link, Mapping) and link.get("rel") == "canonical" and link.get("href"):
            return str(link["href"])
    return None


def _first_content(content: Any) -> str | None:
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        value = content[0].get("value")
        return value if isinstance(value, str) else None
    return None


def _struct_to_utc(parsed: Any) -> datetime | None:
    """feedparser's UTC ``struct_time`` as an aware datetime; ``None`` if out of range."""
    if parsed is None:
        return None
    try:
        year, month, day, hour, minute, second = parsed[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


# --- JSON Feed and RSS-in-JSON ---------------------------------------------------------


def _parse_json(body: bytes, base_url: str | None, source_type: str | None) -> ParsedFeed:
    if len(body) > MAX_JSON_FEED_BYTES:
        raise FeedParseError(f"JSON document larger than {MAX_JSON_FEED_BYTES} bytes")
    try:
        doc = json.loads(body)  # detects UTF-8/16/32 itself, BOM included
    except RecursionError:
        # The C scanner stops at the interpreter's recursion limit: depth is bounded.
        raise FeedParseError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise FeedParseError(f"invalid JSON ({_describe(exc)})") from None
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
    from core.feeds.search_api import parse_search_api  # noqa: PLC0415  (it imports us)

    answer = parse_search_api(doc, source_type)
    if answer is not None:
        return answer
    raise FeedParseError("JSON document is neither JSON Feed nor RSS-in-JSON nor a search API's")


def _json_feed(doc: dict[str, Any], base: str, bozo_reason: str | None = None) -> ParsedFeed:
    items = doc.get("items")
    items = items if isinstance(items, list) else []
    feed_author = _json_author(doc)
    language = one_line(_str(doc.get("language")), MAX_LANGUAGE_CHARS)
    entries = []
    for item in items[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(item, dict):
            continue
        # A link blog's item is about ``external_url``; Atom/RSS put that link in the
        # alternate link too, so both formats of one feed dedupe to the same story.
        url = resolve_http_url(_str(item.get("external_url")) or _str(item.get("url")), base)
        summary = _str(item.get("summary")) or _str(item.get("content_html"))
        summary = summary or _str(item.get("content_text"))
        published = _str(item.get("date_published")) or _str(item.get("date_modified"))
        guid = item.get("id")
        entries.append(
            _entry(
                url=url,
                canonical_source=url,
                title_html=_str(item.get("title")),
                summary_html=summary,
                author=_json_author(item) or feed_author,
                published=_iso_to_utc(published),
                guid=str(guid) if isinstance(guid, (str, int)) else None,
                language=one_line(_str(item.get("language")), MAX_LANGUAGE_CHARS) or language,
            )
        )
    return _feed(
        title_html=_str(doc.get("title")),
        link=resolve_http_url(_str(doc.get("home_page_url")), base),
        kind="json",
        bozo_reason=bozo_reason,
        entries=entries,
        total=len(items),
    )


def _rss_in_json(channel: dict[str, Any], base: str) -> ParsedFeed:
    """Dave Winer's RSS-in-JSON: ``{"rss": {"channel": {..., "item": [...]}}}``."""
    items = channel.get("item")
    items = [items] if isinstance(items, dict) else items if isinstance(items, list) else []
    language = one_line(_str(channel.get("language")), MAX_LANGUAGE_CHARS)
    entries = []
    for item in items[:MAX_ENTRIES_PER_FEED]:
        if not isinstance(item, dict):
            continue
        url = resolve_http_url(_str(item.get("link")), base)
        entries.append(
            _entry(
                url=url,
                canonical_source=url,
                title_html=_str(item.get("title")),
                summary_html=_str(item.get("description")),
                author=_str(item.get("author")),
                published=_rfc822_to_utc(_str(item.get("pubDate"))),
                guid=_str(item.get("guid")),
                language=language,
            )
        )
    return _feed(
        title_html=_str(channel.get("title")),
        link=resolve_http_url(_str(channel.get("link")), base),
        kind="json",
        bozo_reason=None,
        entries=entries,
        total=len(items),
    )


def _json_author(obj: dict[str, Any]) -> str | None:
    """JSON Feed 1.1 ``authors[0].name``, else 1.0 ``author.name``."""
    authors = obj.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    return _str(author.get("name")) if isinstance(author, dict) else None


def _iso_to_utc(value: str | None) -> datetime | None:
    """RFC 3339 as aware UTC; a missing offset is taken as UTC (the spec requires one)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return _rfc822_to_utc(value)  # some generators write RSS dates into JSON Feed
    return _as_utc(moment)


def _rfc822_to_utc(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _str(value: object) -> str | None:
    """``value`` when it is a non-empty string; JSON fields can hold anything."""
    return value if isinstance(value, str) and value else None


# --- shared ----------------------------------------------------------------------------


def _entry(
    *,
    url: str | None,
    canonical_source: str | None,
    title_html: str | None,
    summary_html: str | None,
    author: str | None,
    published: datetime | None,
    guid: str | None,
    language: str | None,
) -> ParsedEntry:
    title = html_to_text(title_html, MAX_TITLE_CHARS)
    summary = html_to_text(summary_html)
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return ParsedEntry(
        url=url,
        canonical_url=canonicalize(canonical_source) if canonical_source else None,
        title=title,
        summary=summary,
        author=html_to_text(author, MAX_AUTHOR_CHARS) or None,
        published=published,
        guid=one_line(guid, MAX_GUID_CHARS),
        language=language,
        content_hash=digest,
    )


def _feed(
    *,
    title_html: str | None,
    link: str | None,
    kind: FeedKind,
    bozo_reason: str | None,
    entries: list[ParsedEntry],
    total: int,
) -> ParsedFeed:
    """The :class:`ParsedFeed` of any format; ``total`` counts entries before the cap."""
    return ParsedFeed(
        title=html_to_text(title_html, MAX_TITLE_CHARS),
        link=link,
        kind=kind,
        bozo_reason=bozo_reason,
        entries=_keep_distinguishing_fragments(entries),
        entries_dropped=max(0, total - MAX_ENTRIES_PER_FEED),
    )


def _keep_distinguishing_fragments(entries: list[ParsedEntry]) -> tuple[ParsedEntry, ...]:
    """Put the fragment back where the feed itself tells entries apart by it.

    Canonical URLs drop fragments, but some sites publish many posts on one page
    (Scripting News: ``/2017/06/26.html#a080605``); merging those would lose posts.
    """
    seen: dict[str | None, int] = {}
    for entry in entries:
        seen[entry.canonical_url] = seen.get(entry.canonical_url, 0) + 1
    if all(count == 1 for key, count in seen.items() if key):
        return tuple(entries)
    return tuple(
        replace(entry, canonical_url=f"{entry.canonical_url}#{fragment}")
        if entry.canonical_url
        and seen[entry.canonical_url] > 1
        and (fragment := urlsplit(entry.url or "").fragment)
        else entry
        for entry in entries
    )
