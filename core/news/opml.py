"""OPML, the feed list readers exchange: reading one (untrusted XML) and writing one.

An OPML file is parsed with ``defusedxml`` and ``forbid_dtd``: any DOCTYPE (where entity
definitions, billion-laughs expansions and external DTDs live) is refused before a
single entity could be expanded or fetched, and the document's size is capped first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import defusedxml
import defusedxml.ElementTree as SafeET

from core.errors import ValidationError
from core.news.search_query import MAX_SOURCES_PER_SEARCH, FeedSource

#: Largest OPML document accepted, in bytes.
MAX_OPML_BYTES = 1_000_000
#: Longest outline title kept.
MAX_OUTLINE_TITLE = 255


@dataclass(frozen=True)
class Outline:
    """A feed outline as the file gives it: ``xmlUrl`` (unchecked) and its title."""

    url: str
    title: str | None


def read_outlines(document: bytes | str) -> list[Outline]:
    """Every outline with an ``xmlUrl`` (a feed; others are folders), nested ones
    included, in document order, URLs not checked.

    Raises :class:`ValidationError` (field ``opml``) for a document that is too large,
    declares a DOCTYPE or entities, is not well-formed XML or is not OPML.
    """
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > MAX_OPML_BYTES:
        raise ValidationError(f"OPML larger than {MAX_OPML_BYTES} bytes", field="opml")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden):
        raise ValidationError("OPML with a DOCTYPE or entities is refused", field="opml") from None
    except defusedxml.ExternalReferenceForbidden:
        raise ValidationError("OPML with external references is refused", field="opml") from None
    except ET.ParseError as exc:
        raise ValidationError(f"not well-formed XML: {exc}", field="opml") from None
    if root.tag.lower() != "opml":
        raise ValidationError("not an OPML document (root element is not <opml>)", field="opml")
    outlines = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url:
            title = (outline.get("title") or outline.get("text") or "").strip()
            outlines.append(Outline(url=url, title=title[:MAX_OUTLINE_TITLE] or None))
    return outlines


def parse_opml(document: bytes) -> list[FeedSource]:
    """The distinct http(s) feed URLs of an OPML document's outlines, in document order.

    Outlines with a non-http(s) or malformed URL are skipped, as a reader would. Raises
    :class:`ValidationError` as :func:`read_outlines` does, and for a document listing
    more feeds than a search may follow.
    """
    feeds: dict[str, FeedSource] = {}
    for outline in read_outlines(document):
        if outline.url in feeds:
            continue
        try:
            feeds[outline.url] = FeedSource(url=outline.url)
        except ValueError:
            continue
    if len(feeds) > MAX_SOURCES_PER_SEARCH:
        raise ValidationError(
            f"OPML lists {len(feeds)} feeds; a search follows at most {MAX_SOURCES_PER_SEARCH}",
            field="opml",
        )
    return list(feeds.values())


@dataclass(frozen=True)
class ExportedFeed:
    """One feed of an export: its URL and title (if the feed told us one)."""

    url: str
    title: str | None


def write_opml(
    title: str, folders: Iterable[tuple[str, Sequence[ExportedFeed]]], *, created: datetime
) -> bytes:
    """An OPML 2.0 document: one folder outline per ``(name, feeds)`` pair."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = created.strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = ET.SubElement(root, "body")
    for name, feeds in folders:
        folder = ET.SubElement(body, "outline", text=name, title=name)
        for feed in feeds:
            label = feed.title or feed.url
            ET.SubElement(folder, "outline", type="rss", text=label, title=label, xmlUrl=feed.url)
    ET.indent(root)
    written: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return written
