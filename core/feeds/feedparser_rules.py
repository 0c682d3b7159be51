"""feedparser's own rules, reproduced for :mod:`core.feeds.fast_xml`: which charset it
decodes a body with (without complaint), how it repairs text, joins URIs and scopes
``xml:base`` and ``xml:lang``."""

from __future__ import annotations

import codecs
import contextlib
import re
import urllib.parse
import xml.etree.ElementTree as ET

from feedparser.mixin import _cp1252
from feedparser.urls import make_safe_absolute_uri

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XML_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_CP1252_RANGE = re.compile("[\x80-\x9f]")


def decode_as_feedparser(body: bytes, content_type: str | None) -> str | None:
    """The body as feedparser would decode it without complaint, or ``None``."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    elif body[:1] != b"<" and body[:2] in (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00"):
        return None  # UTF-16/32: feedparser's own sniffing
    declared = _XML_ENCODING.match(body)
    xml_encoding = declared.group(1).decode("ascii", "replace").lower() if declared else ""
    charset = ""
    if content_type:
        media_type, _, params = content_type.partition(";")
        media_type = media_type.strip().lower()
        if not (
            media_type in ("application/xml", "application/xml-dtd")
            or (media_type.startswith("application/") and media_type.endswith("+xml"))
        ):
            return None  # text/xml's us-ascii default, or not an XML type: bozo cases
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                charset = value.strip().strip("\"'")
    encoding = charset or xml_encoding or "utf-8"
    if encoding.lower() == "gb2312":
        return None
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def fix_text(value: str) -> str:
    """feedparser's last steps on every text value: its UTF-8-read-as-Latin-1 repair and
    the cp1252 mapping of C1 controls."""
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("iso-8859-1").decode("utf-8")
    if _CP1252_RANGE.search(value):
        value = value.translate(_cp1252)
    return value


def urljoin(base: str, uri: str) -> str:
    uri = _URI_FIXER.sub(r"\1\3", uri)
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""


def base_inside(element: ET.Element, inherited: str) -> str:
    """feedparser's base URI inside ``element`` (``xml:base`` joined onto the inherited one)."""
    value = element.get(XML_BASE, element.get("base")) or inherited
    if value is inherited:
        return inherited
    if inherited:
        return make_safe_absolute_uri(inherited, value) or inherited
    return urljoin(inherited, value)


def lang_inside(element: ET.Element, inherited: str | None) -> str | None:
    lang = element.get(XML_LANG, element.get("lang"))
    if lang is None:
        return inherited
    return lang or None


def dashed(lang: str | None) -> str | None:
    return lang.replace("_", "-") if lang else lang
