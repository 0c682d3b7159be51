"""The parsed shapes every feed format becomes, and the helpers that build them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from core.errors import NewsmonError
from core.feeds.canonical_url import canonicalize, clean_url, guid_key
from core.feeds.mojibake import repair_mojibake
from core.feeds.text import (
    MAX_TITLE_CHARS,
    collapse_whitespace,
    html_to_text,
    one_line,
    valid_unicode,
)

#: Entries kept per feed document; later ones are dropped (feeds list newest first).
MAX_ENTRIES_PER_FEED = 500
#: Longest author, guid and language values kept, in characters.
MAX_AUTHOR_CHARS = 200
MAX_GUID_CHARS = 1000
MAX_LANGUAGE_CHARS = 35
#: Longest bozo reason kept, in characters.
MAX_BOZO_REASON_CHARS = 300
#: What ``bozo_reason`` says when text was repaired (followed by how many texts).
MOJIBAKE_NOTE = "repaired UTF-8 text read in a single-byte charset"

FeedKind = Literal["rss", "atom", "rdf", "json"]


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
      canonical_url: the article's URL to show and to take its host from: the entry's
        canonical link (``rel="canonical"``, ``feedburner:origLink``) or ``url``, through
        :func:`clean_url` (as published, less tracking); ``None`` if not http(s).
      url_key: the dedupe key, :func:`canonicalize` of the same link.
      guid_key: :func:`guid_key` of ``guid``: set when the id names one item in every
        feed (``tag:``, ``urn:``, a URL), so copies under other links are one story too.
      title, summary: plain text, whitespace collapsed, capped in length.
      published: publication (else update) time, aware UTC, ``None`` if absent or invalid.
      content_hash: SHA-256 hex of title and summary, to notice edited entries.
      text_repaired: title, summary or author held mojibake that was repaired.
      date_issue: why the feed's date was not taken (``published`` is then ``None``; the
        fetch time stands in when stored, see :func:`core.feeds.dates.settle_date`).
    """

    url: str | None
    canonical_url: str | None
    url_key: str | None
    guid_key: str | None
    title: str
    summary: str
    author: str | None
    published: datetime | None
    guid: str | None
    language: str | None
    content_hash: str
    text_repaired: bool = False
    date_issue: str | None = None


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


def describe_error(exc: object) -> str:
    text = collapse_whitespace(valid_unicode(f"{type(exc).__name__}: {exc}"))
    return text[:MAX_BOZO_REASON_CHARS]


def iso_to_utc(value: str | None) -> datetime | None:
    """RFC 3339 as aware UTC; a missing offset is taken as UTC (the spec requires one)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return rfc822_to_utc(value)  # some generators write RSS dates into JSON Feed
    return as_utc(moment)


def rfc822_to_utc(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        return None


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def text_or_none(value: object) -> str | None:
    """``value`` when it is a non-empty string; JSON fields can hold anything."""
    return value if isinstance(value, str) and value else None


def build_entry(
    *,
    url: str | None,
    canonical_source: str | None,
    title_html: str | None,
    summary_html: str | None,
    author: str | None,
    published: datetime | None,
    guid: str | None,
    language: str | None,
    date_issue: str | None = None,
) -> ParsedEntry:
    raw = (title_html, summary_html, author)
    # Before html_to_text: its whitespace collapsing would turn the no-break space in
    # "Ã\xa0" (UTF-8 "à" read as Latin-1) into a plain space.
    title_html, summary_html, author = (repair_mojibake(v) if v else v for v in raw)
    title = html_to_text(title_html, MAX_TITLE_CHARS)
    summary = html_to_text(summary_html)
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return ParsedEntry(
        url=url,
        canonical_url=clean_url(canonical_source) if canonical_source else None,
        url_key=canonicalize(canonical_source) if canonical_source else None,
        guid_key=guid_key(guid),
        title=title,
        summary=summary,
        author=html_to_text(author, MAX_AUTHOR_CHARS) or None,
        published=published,
        guid=one_line(guid, MAX_GUID_CHARS),
        language=language,
        content_hash=digest,
        text_repaired=raw != (title_html, summary_html, author),
        date_issue=date_issue,
    )


def build_feed(
    *,
    title_html: str | None,
    link: str | None,
    kind: FeedKind,
    bozo_reason: str | None,
    entries: list[ParsedEntry],
    total: int,
) -> ParsedFeed:
    """The :class:`ParsedFeed` of any format; ``total`` counts entries before the cap.

    Repaired mojibake is told in ``bozo_reason`` (the source shows it as a warning).
    """
    title = repair_mojibake(title_html) if title_html else title_html
    repaired = sum(entry.text_repaired for entry in entries) + (title != title_html)
    if repaired:
        note = f"{MOJIBAKE_NOTE} in {repaired} place(s)"
        bozo_reason = f"{bozo_reason}; {note}" if bozo_reason else note
    return ParsedFeed(
        title=html_to_text(title, MAX_TITLE_CHARS),
        link=link,
        kind=kind,
        bozo_reason=bozo_reason,
        entries=tuple(entries),
        entries_dropped=max(0, total - MAX_ENTRIES_PER_FEED),
    )
