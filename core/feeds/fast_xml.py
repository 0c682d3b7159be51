"""The common shape of RSS 2.0, RSS 1.0 and Atom 1.0, read on ElementTree as feedparser reads it.

feedparser drives expat through SAX with several Python calls per element and per text
chunk; on the corpus that is most of the parse time. For a document that is well-formed,
decodes without complaint in the charset feedparser would pick, and is made only of
elements whose feedparser handling is reproduced here (``xml:base`` and ``xml:lang``
included), :func:`read_plain_feed` returns what :mod:`core.feeds.parse` reads off
``feedparser.parse``: the same keys, the same values. Anything else returns ``None`` and
goes to feedparser. tests/unit/test_fast_xml.py holds both paths to the same
:class:`ParsedFeed` on every corpus document and a matrix of shapes.

defusedxml refuses any DOCTYPE, so no entity or DTD is ever declared, expanded or fetched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.mixin import _FeedParserMixin

from core.feeds.feedparser_rules import (
    XML_BASE,
    XML_LANG,
    base_inside,
    dashed,
    decode_as_feedparser,
    fix_text,
    lang_inside,
    urljoin,
)
from core.feeds.model import MAX_ENTRIES_PER_FEED

_ATOM = "http://www.w3.org/2005/Atom"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RSS10 = "http://purl.org/rss/1.0/"
_RDF_ABOUT = f"{{{_RDF}}}about"

#: Namespace URI -> the prefix feedparser names its elements by ('' for the core formats).
_KNOWN_PREFIXES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
#: Content types feedparser reads as text; anything else (xhtml, base64) goes to feedparser.
_TEXT_TYPES = frozenset({"text", "plain", "html", "text/plain", "text/html"})
#: feedparser's HTML types (after its short names): a link of such a type is ``link``.
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*?>")
_NAMESPACE_DECLARATION = re.compile(r"xmlns:([^\s=>/]+)\s*=\s*([\"'])(.*?)\2")

#: Elements with a feedparser handler that touch nothing read here (categories, media,
#: enclosures, podcast metadata, subtitles, rights...); any other handled element that is
#: not read below sends the document to feedparser.
_HARMLESS = frozenset(
    {
        "category", "dc_subject", "keywords", "enclosure", "comments", "cloud", "generator",
        "subtitle", "tagline", "rights", "copyright", "dc_rights", "dc_publisher",
        "webmaster", "docs", "ttl", "expirationdate", "info", "feedburner_browserfriendly",
        "media_content", "media_thumbnail", "media_category", "media_keywords",
        "media_rating", "media_credit", "media_restriction", "media_license",
        "itunes_image", "itunes_link", "itunes_block", "itunes_explicit", "itunes_category",
        "itunes_keywords", "itunes_subtitle", "itunes_owner", "itunes_name", "itunes_email",
        "admin_generatoragent", "admin_errorreportsto", "cc_license",
        "creativecommons_license", "georss_point", "language", "dc_language", "psc_chapters",
        "psc_chapter", "contributor", "source",
        "icon", "logo", "width", "height", "url", "name", "email", "uri",
    }
)  # fmt: skip
#: Feed-level elements whose children feedparser files away from the feed's title and link.
_FEED_CONTAINERS = frozenset(
    {"image", "textinput", "author", "contributor", "itunes_owner", "itunes_category", "items"}
)
#: Keys read by core.feeds.parse that an element without a handler could overwrite.
_RESERVED = frozenset(
    {
        "links", "title_detail", "summary_detail", "published_parsed", "updated_parsed",
        "created_parsed", "guidislink", "authors", "author_detail", "feed", "entries",
        "feedburner_origlink",
    }
)  # fmt: skip
_TITLE = frozenset({"title", "dc_title"})
_DATES = {
    "pubdate": "published_parsed", "published": "published_parsed",
    "issued": "published_parsed", "dcterms_issued": "published_parsed",
    "updated": "updated_parsed", "modified": "updated_parsed", "dc_date": "updated_parsed",
    "lastbuilddate": "updated_parsed", "dcterms_modified": "updated_parsed",
    "created": "created_parsed", "dcterms_created": "created_parsed",
}  # fmt: skip
_AUTHORS = frozenset({"author", "dc_creator", "dc_author", "managingeditor", "itunes_author"})
#: Elements feedparser reads as the entry summary (or, after one, as content).
_SUMMARIES = frozenset({"description", "summary", "dc_description", "itunes_summary"})
#: Handled elements that change nothing of a feed's title, link or language.
_FEED_HARMLESS = _HARMLESS | _AUTHORS | _SUMMARIES | set(_DATES) | {"abstract"}
#: Elements after which feedparser takes a title again (they reset its ``title_depth``).
_TITLE_RESETS = frozenset({"item", "entry", "image", "textinput", "source"})


class _Decline(Exception):
    """This document needs feedparser."""


class PlainFeed(NamedTuple):
    """feedparser's ``version``, ``feed`` and first ``entries`` (same keys and values)."""

    version: str
    feed: dict[str, Any]
    entries: list[dict[str, Any]]
    total: int  # entries in the document, read or not


def read_plain_feed(
    body: bytes, headers: Mapping[str, str], base: str, limit: int = MAX_ENTRIES_PER_FEED
) -> PlainFeed | None:
    """The feed as feedparser would give it, or ``None`` to use feedparser.

    ``headers`` are lower-cased response headers; ``base`` the feed URL ('' if unknown).
    Entries past ``limit`` are counted, not read.
    """
    text = decode_as_feedparser(body, headers.get("content-type"))
    if text is None:
        return None
    try:
        root = fromstring(_XML_DECLARATION.sub("", text, count=1), forbid_dtd=True)
        return _Reader(text, base, headers.get("content-language")).read(root, limit)
    except (ET.ParseError, DefusedXmlException, _Decline):
        return None  # not well-formed, a DOCTYPE, or a shape feedparser must read


@cache
def _has_handler(name: str) -> bool:
    return hasattr(StrictFeedParser, f"_start_{name}") or hasattr(StrictFeedParser, f"_end_{name}")


def _lower_case_attributes(element: ET.Element) -> None:
    """feedparser matches attribute names in any case; here only lower case is read."""
    for key in element.attrib:
        local = key.rpartition("}")[2]  # the namespace URI's own case does not matter
        if local != local.lower() and key != "isPermaLink":
            raise _Decline


class _Reader:
    def __init__(self, text: str, base: str, content_language: str | None) -> None:
        self.base = base
        self.lang = content_language
        declared: dict[str, str] = {}
        for prefix, _, given in _NAMESPACE_DECLARATION.findall(text):
            uri = given.lower()
            if declared.setdefault(uri, prefix) != prefix and uri not in _KNOWN_PREFIXES:
                raise _Decline  # an unknown URI under two prefixes: named by each
        self.prefixes = {**declared, **_KNOWN_PREFIXES}
        self.names: dict[str, str] = {}
        # feedparser's title_depth (a title is taken only while unlocked) and hasContent.
        self.title_locked = self.has_content = False

    def name(self, tag: str) -> str:
        """feedparser's name of an element: ``prefix_local`` lower-cased, core formats bare."""
        known = self.names.get(tag)
        if known is not None:
            return known
        if tag.startswith("{"):
            uri, _, local = tag[1:].partition("}")
            prefix = self.prefixes.get(uri.lower())
            if prefix is None:
                raise _Decline  # a default namespace feedparser does not know
        else:
            prefix, local = "", tag
        name = f"{prefix}_{local}".lower() if prefix else local.lower()
        self.names[tag] = name
        return name

    def read(self, root: ET.Element, limit: int) -> PlainFeed:
        lang, base = lang_inside(root, self.lang), base_inside(root, self.base)
        feed: dict[str, Any] = {"language": dashed(lang)} if lang else {}
        if root.tag == "rss":
            if len(root) != 1 or self.name(root[0].tag) != "channel":
                raise _Decline
            channel, version = root[0], "rss20"
            lang, base = lang_inside(channel, lang), base_inside(channel, base)
        elif root.tag == f"{{{_ATOM}}}feed":
            channel, version = root, "atom10"
        elif root.tag == f"{{{_RDF}}}RDF" and any(c.tag == f"{{{_RSS10}}}channel" for c in root):
            channel, version = root, "rss10"
        else:
            raise _Decline
        entries: list[dict[str, Any]] = []
        total = 0
        self.title_locked = False
        for child in channel:
            name = self.name(child.tag)
            if name in ("item", "entry"):
                total += 1
                if total <= limit:
                    inner_lang, inner_base = lang_inside(child, lang), base_inside(child, base)
                    entries.append(self.entry(child, inner_lang, inner_base))
            elif name == "channel" and version == "rss10":
                inner = base_inside(child, base)
                for element in child:
                    self.feed_element(element, self.name(element.tag), feed, inner)
            else:
                self.feed_element(child, name, feed, base)
            if name in _TITLE_RESETS:
                self.title_locked = False
        return PlainFeed(version, feed, entries, total)

    def feed_element(self, element: ET.Element, name: str, feed: dict[str, Any], base: str) -> None:
        if name in _FEED_CONTAINERS:
            return  # feedparser files their children under their own keys
        if len(element):
            raise _Decline
        if name in _TITLE:
            self.title(element, None, feed)
        elif name == "link":
            self.link(element, feed, base_inside(element, base), in_entry=False)
        elif name in ("language", "dc_language"):
            feed["language"] = self.text(element)
        elif name in ("id", "guid"):
            self.guid(element, feed, base_inside(element, base))
        elif name not in _FEED_HARMLESS:
            self.other(element, name)

    def entry(self, item: ET.Element, lang: str | None, base: str) -> dict[str, Any]:
        if set(item.keys()) - {XML_LANG, XML_BASE, "lang", _RDF_ABOUT}:
            raise _Decline  # CDF lastmod/href attributes
        entry: dict[str, Any] = {"links": []}
        if about := item.get(_RDF_ABOUT):
            entry["id"] = about
        self.title_locked = self.has_content = False
        for child in item:
            name = self.name(child.tag)
            if len(child):
                if name == "author":
                    self.atom_author(child, entry)
                else:
                    self.harmless_tree(child)
            else:
                self.entry_element(child, name, lang_inside(child, lang), base, entry)
            if name == "source":
                self.title_locked = False
        return entry

    def entry_element(
        self, child: ET.Element, name: str, lang: str | None, base: str, entry: dict[str, Any]
    ) -> None:
        if name in _TITLE:
            self.title(child, lang, entry)
        elif name == "link":
            self.link(child, entry, base_inside(child, base), in_entry=True)
        elif name in ("guid", "id"):
            self.guid(child, entry, base_inside(child, base))
        elif name in ("content", "content_encoded") or (
            # After a summary, feedparser reads another summary as content.
            name in _SUMMARIES and "summary" in entry and not self.has_content
        ):
            self.has_content = True
            default = "text/html" if name == "content_encoded" else "text/plain"
            value = self.content_text(child, default)
            entry.setdefault("content", []).append({"value": value})
            entry.setdefault("summary", value)
        elif name in _SUMMARIES:
            default = "text/html" if name in ("description", "dc_description") else "text/plain"
            entry["summary"] = self.content_text(child, default)
            entry["summary_detail"] = {"language": dashed(lang)}
        elif name in _AUTHORS:
            entry["author"] = self.text(child)
        elif name in _DATES:
            text = self.text(child)
            entry[_DATES[name].removesuffix("_parsed")] = text  # checked against the reading
            entry[_DATES[name]] = _parse_date(text)
        elif name == "feedburner_origlink" and not child.keys():
            entry[name] = self.text(child)
        else:
            self.other(child, name)

    def other(self, element: ET.Element, name: str) -> None:
        if name in _RESERVED or (_has_handler(name) and name not in _HARMLESS):
            raise _Decline

    def harmless_tree(self, element: ET.Element) -> None:
        """An element with children is fine when nothing in it is read here."""
        for inner in element.iter():
            self.other(inner, self.name(inner.tag))

    def text(self, element: ET.Element) -> str:
        return fix_text((element.text or "").strip())

    def content_text(self, element: ET.Element, default_type: str) -> str:
        """The text of a title, summary or content element, if feedparser reads it as text."""
        _lower_case_attributes(element)
        if element.get("type", default_type).lower() not in _TEXT_TYPES:
            raise _Decline  # xhtml, base64 payloads
        if element.get("mode"):
            raise _Decline  # base64/escaped modes of Atom 0.3
        return self.text(element)

    def title(self, element: ET.Element, lang: str | None, context: dict[str, Any]) -> None:
        value = self.content_text(element, "text/plain")
        if self.title_locked:
            return  # feedparser keeps the first non-empty title
        context["title"] = value
        context["title_detail"] = {"language": dashed(lang)}
        self.title_locked = bool(value)

    def link(
        self, element: ET.Element, context: dict[str, Any], base: str, *, in_entry: bool
    ) -> None:
        _lower_case_attributes(element)
        href = element.get("href", element.get("url", element.get("uri")))
        if not href:
            if set(element.keys()) - {XML_BASE, XML_LANG}:
                raise _Decline
            value = self.uri(element, base)
            if in_entry:
                value = value.replace("&amp;", "&")
            value = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", value)
            context["link"] = value
            context.setdefault("links", []).append({"rel": "alternate", "href": value})
            return
        # feedparser lower-cases these two values (and every attribute name).
        rel = element.get("rel", "alternate").lower()
        kind = element.get("type", "application/atom+xml" if rel == "self" else "text/html")
        href = urljoin(base, href)
        context.setdefault("links", []).append({"rel": rel, "href": href})
        if rel == "alternate" and kind.lower() in _HTML_TYPES:
            context["link"] = href

    def uri(self, element: ET.Element, base: str | None) -> str:
        value = (element.text or "").strip()
        if base is not None and value:
            value = urljoin(base, value)
        return fix_text(value)

    def guid(self, element: ET.Element, context: dict[str, Any], base: str) -> None:
        if set(element.keys()) - {"isPermaLink", "ispermalink", XML_BASE, XML_LANG}:
            raise _Decline  # two spellings of isPermaLink, or anything else
        is_link = element.get("isPermaLink", element.get("ispermalink", "true")) == "true"
        value = self.uri(element, base if is_link else None)
        context["id"] = value
        if is_link:
            context.setdefault("link", value)

    def atom_author(self, element: ET.Element, entry: dict[str, Any]) -> None:
        parts: dict[str, str] = {}
        for child in element:
            name = self.name(child.tag)
            if name in ("name", "email") and not len(child):
                parts[name] = (child.text or "").strip()
            else:
                self.harmless_tree(child)
        person, email = parts.get("name"), parts.get("email")
        entry["author"] = f"{person} ({email})" if person and email else person or email or ""
