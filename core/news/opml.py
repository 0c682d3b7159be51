"""OPML import: the feed list another reader exports, as feed sources of a search.

An OPML file is untrusted XML. We refuse any DOCTYPE (which is where entity definitions,
billion-laughs expansions and external DTDs live) before parsing, and cap its size; the
standard library's expat then never sees an entity it could expand or fetch. That is
what defusedxml does for this case, without adding a dependency for one call.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from core.errors import ValidationError
from core.news.search_query import MAX_SOURCES_PER_SEARCH, FeedSource

#: Largest OPML document accepted, in bytes.
MAX_OPML_BYTES = 1_000_000
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def parse_opml(document: bytes) -> list[FeedSource]:
    """The distinct http(s) feed URLs of an OPML document's outlines, in document order.

    Outlines may nest (folders); an outline is a feed when it has ``xmlUrl``. Outlines
    with a non-http(s) or malformed URL are skipped. Raises :class:`ValidationError`
    for a document that is too large, declares a DOCTYPE, is not XML or not OPML, or
    lists more feeds than a search may follow.
    """
    if len(document) > MAX_OPML_BYTES:
        raise ValidationError(f"OPML larger than {MAX_OPML_BYTES} bytes", field="opml")
    if _DOCTYPE.search(document):
        raise ValidationError("OPML with a DOCTYPE or entities is refused", field="opml")
    try:
        root = ET.fromstring(document)  # noqa: S314  (no DOCTYPE: nothing to expand)
    except ET.ParseError as exc:
        raise ValidationError(f"not well-formed XML: {exc}", field="opml") from None
    if root.tag.lower() != "opml":
        raise ValidationError("not an OPML document (root element is not <opml>)", field="opml")
    feeds: dict[str, FeedSource] = {}
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if not url or url in feeds:
            continue
        try:
            feeds[url] = FeedSource(url=url)
        except ValueError:
            continue  # not http(s): skipped, as a reader would
    if len(feeds) > MAX_SOURCES_PER_SEARCH:
        raise ValidationError(
            f"OPML lists {len(feeds)} feeds; a search follows at most {MAX_SOURCES_PER_SEARCH}",
            field="opml",
        )
    return list(feeds.values())
