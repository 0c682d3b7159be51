"""Feed bytes -> :class:`ParsedFeed`: RSS 0.9x/1.0/2.0, Atom, RDF and JSON Feed. Pure.

The common shape of well-formed RSS/Atom/RDF is read by :mod:`core.feeds.fast_xml`, which
gives what feedparser gives at a fraction of the time; everything else goes to
``feedparser.parse(io.BytesIO(body), ...)`` (never a ``str``: feedparser would
take it for a path or URL) with its HTML sanitizer and relative-URI rewriting switched off:
on the corpus those two are about half of feedparser's time, and newsmon shows only plain
text, which :func:`core.feeds.text.html_to_text` produces with nh3. Links are resolved
against the feed's URL here, not by either parser: each is repaired first
(:func:`core.feeds.canonical_url.resolve_http_url`), since joined first a malformed
``http:/www.x.com/a`` would land on the feed's own host. feedparser reads XML with expat
through SAX, which fetches no external entity or DTD; a DOCTYPE that declares entities is
removed before parsing (billion laughs, XXE), so no entity of the document's own is ever
expanded.

JSON (chosen from the content, never the file name) goes to :mod:`core.feeds.json_feed`;
every format becomes the shapes of :mod:`core.feeds.model`.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from core.feeds.canonical_url import resolve_http_url
from core.feeds.dates import check_feed_date
from core.feeds.fast_xml import read_plain_feed
from core.feeds.json_feed import parse_json
from core.feeds.model import (
    MAX_ENTRIES_PER_FEED,
    MAX_LANGUAGE_CHARS,
    FeedKind,
    FeedParseError,
    ParsedEntry,
    ParsedFeed,
    build_entry,
    build_feed,
    describe_error,
)
from core.feeds.text import (
    one_line,
)

#: Bytes looked at to tell an HTML page from a broken feed in the "not a feed" message.
SNIFF_BYTES = 1024

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
#: WordPress's feed endpoints, its xml:base: where an empty entry link resolves to.
_FEED_ENDPOINT = re.compile(r"/wp-(?:atom|rss2?|rdf|commentsrss2)\.php$")
#: Leading bytes skipped when sniffing: UTF-8 BOM and whitespace.
_LEADING = b"\xef\xbb\xbf \t\r\n"
#: feedparser's date keys (raw text; ``_parsed``: UTC struct), in order of preference.
_DATE_KEYS = ("published", "updated", "created")


def parse_feed(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    base_url: str | None = None,
    *,
    source_type: str | None = None,
    fast_path: bool = True,
) -> ParsedFeed:
    """Parse a fetched feed body; ``headers`` are the response headers, ``base_url`` its URL.

    ``source_type`` (``sources.type``) only settles answers that are ambiguous alone;
    ``fast_path=False`` reads every XML feed with feedparser (the reference).

    Raises :class:`FeedParseError` when the body is not a feed at all.
    """
    first = body.lstrip(_LEADING)[:1]
    if not first:
        raise FeedParseError("empty body")
    if first == b"{":
        return parse_json(body, base_url, source_type)
    return parse_xml(body, headers or {}, base_url, fast_path=fast_path)


# --- XML: the fast path, else feedparser --------------------------------------------------


def parse_xml(
    body: bytes, headers: Mapping[str, str], base_url: str | None, *, fast_path: bool = True
) -> ParsedFeed:
    """An XML feed; ``fast_path=False`` always uses feedparser (the reference it is held to)."""
    body = without_leading_space(body)
    response_headers = {key.lower(): value for key, value in headers.items()}
    # Without a Content-Type feedparser would read an undeclared encoding as Latin-1;
    # XML's own default is UTF-8.
    response_headers.setdefault("content-type", "application/xml")
    # Neither parser gets the base: links are repaired, then joined, in _xml_entry.
    base = urljoin(base_url or "", response_headers.pop("content-location", ""))
    plain = read_plain_feed(body, response_headers, "") if fast_path else None
    if plain is not None:
        version, feed, raw_entries, total = plain
        bozo_reason = None
    else:
        data = feedparser.parse(
            io.BytesIO(_without_entity_declarations(body)),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
        version, feed, raw_entries = data.get("version") or "", data.feed, data.entries
        total = len(raw_entries)
        if not version and not raw_entries:
            raise FeedParseError(_why_not_xml_feed(body, data))
        bozo_reason = _bozo_reason(data)
    feed_language = one_line(feed.get("language"), MAX_LANGUAGE_CHARS)
    own = {base} | {resolve_http_url(link.get("href"), base) for link in _self_links(feed)}
    entries = [
        _xml_entry(raw, base, feed_language, own) for raw in raw_entries[:MAX_ENTRIES_PER_FEED]
    ]
    return build_feed(
        title_html=feed.get("title"),
        link=resolve_http_url(feed.get("link"), base),
        kind=_xml_kind(version),
        bozo_reason=bozo_reason,
        entries=entries,
        total=total,
    )


def without_leading_space(body: bytes) -> bytes:
    """``body`` without whitespace before its XML declaration (after any BOM).

    expat refuses such a document, and feedparser then reads all of it with its lenient
    SGML parser (slower, and the feed is flagged as broken) over a few stray newlines.
    """
    bom = codecs.BOM_UTF8 if body.startswith(codecs.BOM_UTF8) else b""
    rest = body[len(bom) :]
    stripped = rest.lstrip(b" \t\r\n")
    return body if len(stripped) == len(rest) else bom + stripped


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
        return f"no RSS, Atom or RDF document ({describe_error(data.get('bozo_exception'))})"
    return "no RSS, Atom or RDF root element"


def _bozo_reason(data: Any) -> str | None:
    exc = data.get("bozo_exception") if data.get("bozo") else None
    return None if exc is None else describe_error(exc)


def _self_links(feed: Any) -> list[Mapping[str, Any]]:
    links = feed.get("links") or ()
    return [link for link in links if isinstance(link, Mapping) and link.get("rel") == "self"]


def _xml_entry(raw: Any, base: str, feed_language: str | None, own: set[str | None]) -> ParsedEntry:
    url = resolve_http_url(raw.get("link"), base)
    if url is not None and (url in own or _FEED_ENDPOINT.search(urlsplit(url).path)):
        # An empty href resolves onto the feed document itself; kept, every such entry
        # would be one story. An http(s) id is the entry's own address (WordPress ?p=).
        url = resolve_http_url(raw.get("id"), "")
    preferred = _canonical_link(raw.get("links") or ()) or raw.get("feedburner_origlink")
    summary_html = raw.get("summary") or _first_content(raw.get("content"))
    detail = raw.get("title_detail") or raw.get("summary_detail") or {}
    published, date_issue = _entry_date(raw)
    return build_entry(
        url=url,
        canonical_source=resolve_http_url(preferred, base) or url,
        title_html=raw.get("title"),
        summary_html=summary_html,
        author=raw.get("author"),
        published=published,
        guid=raw.get("id"),
        language=one_line(detail.get("language"), MAX_LANGUAGE_CHARS) or feed_language,
        date_issue=date_issue,
    )


def _entry_date(raw: Any) -> tuple[datetime | None, str | None]:
    """Publication (else update, else creation) time, checked against its text."""
    for key in _DATE_KEYS:
        # dict.get: FeedParserDict.get maps missing keys to others with a DeprecationWarning.
        parsed = dict.get(raw, f"{key}_parsed")
        if parsed:
            return check_feed_date(dict.get(raw, key), _struct_to_utc(parsed))
    return None, None


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
