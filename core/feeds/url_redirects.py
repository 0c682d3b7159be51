"""Redirect wrappers whose target is written in the URL itself, and how to read it.

FeedBurner/feedproxy links carry an opaque token, so they are not unwrapped here: the
parser prefers the entry's ``feedburner:origLink`` instead. Shorteners (``t.co``,
``bit.ly``) would need a request: never followed.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import SplitResult, parse_qsl, unquote

#: Nested redirect wrappers unwrapped at most (Google Alerts -> Google News -> site).
MAX_UNWRAP_DEPTH = 3

#: Redirectors carrying the target URL in a query parameter: (host, path prefix) -> param.
REDIRECT_PARAMS: dict[tuple[str, str], str] = {
    ("news.google.com", "/"): "url",  # news.google.com/news/url?...&url=<target>
    ("www.google.com", "/url"): "url",  # Google Alerts: ...&url=<target>; classic uses q
    ("google.com", "/url"): "url",
    ("l.facebook.com", "/l.php"): "u",
    ("lm.facebook.com", "/l.php"): "u",
    ("l.instagram.com", "/"): "u",
    ("t.umblr.com", "/redirect"): "z",
    ("www.bing.com", "/news/apiclick.aspx"): "url",
    ("bing.com", "/news/apiclick.aspx"): "url",
    ("out.reddit.com", "/"): "url",
    ("www.youtube.com", "/redirect"): "q",
    ("www.linkedin.com", "/redir/redirect"): "url",
    ("vk.com", "/away.php"): "to",
}
#: Fallback parameters of the same redirectors (``google.com/url?q=<target>``).
REDIRECT_FALLBACK_PARAMS: dict[tuple[str, str], str] = {
    ("www.google.com", "/url"): "q",
    ("google.com", "/url"): "q",
}
#: Archive links ``archive.is/o/<id>/<target>`` (target with or without its scheme).
ARCHIVE_HOSTS = frozenset({"archive.is", "archive.ph", "archive.today", "archive.li"})
_ARCHIVE_PATH = re.compile(r"^/o/[A-Za-z0-9]+/(.+)$")
#: AMP caches: ``<anything>.cdn.ampproject.org/{c,v}/[s/]<host>/<path>``.
_AMP_CACHE_PATH = re.compile(r"^/(?:c|v)/(s/)?([^/]+)(/.*)?$")
#: Google's AMP viewer ``www.google.com/amp/s/<host>/<path>``.
_GOOGLE_AMP_PATH = re.compile(r"^/amp/(s/)?([^/]+\.[^/]+)(/.*)?$")
#: Google News article ids (``/rss/articles/CBMi...``) that embed the target URL.
_GOOGLE_NEWS_ARTICLE = re.compile(r"^(?:/__i)?/rss(?:/rd)?/articles/([A-Za-z0-9_-]+)")


def unwrap(parts: SplitResult) -> str | None:
    """The target URL a known redirector points at, when the URL itself says it."""
    host = (parts.hostname or "").rstrip(".")
    path = parts.path or "/"
    if host.endswith(".cdn.ampproject.org"):
        return _path_target(_AMP_CACHE_PATH.match(path), parts.query)
    if host in ("www.google.com", "google.com") and path.startswith("/amp/"):
        return _path_target(_GOOGLE_AMP_PATH.match(path), parts.query)
    if host == "news.google.com":
        match = _GOOGLE_NEWS_ARTICLE.match(path)
        if match:
            return _google_news_target(match.group(1))
    if host in ARCHIVE_HOSTS and (archived := _ARCHIVE_PATH.match(path)):
        target = unquote(archived.group(1))
        return target if "://" in target else f"http://{target}"
    for table in (REDIRECT_PARAMS, REDIRECT_FALLBACK_PARAMS):
        for (wrapper_host, prefix), name in table.items():
            if host == wrapper_host and path.startswith(prefix):
                for key, value in parse_qsl(parts.query, keep_blank_values=False):
                    if key == name and value:
                        return value.strip()
    return None


def _path_target(match: re.Match[str] | None, query: str) -> str | None:
    """Target of an AMP cache/viewer path: ``s/`` means https, otherwise http."""
    if match is None:
        return None
    secure, host, rest = match.groups()
    target = f"{'https' if secure else 'http'}://{unquote(host)}{rest or '/'}"
    return f"{target}?{query}" if query else target


def _google_news_target(article_id: str) -> str | None:
    """URL embedded in an older Google News article id (protobuf: 0x08 0x13 0x22 len url).

    Newer ids (``CBMi...`` with an opaque ``AU_yqL...`` payload) hold no URL: ``None``.
    """
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(b"\x08\x13\x22"):
        return None
    length, pos = 0, 3
    for shift in (0, 7):  # protobuf varint, at most two bytes for a URL length
        if pos >= len(raw):
            return None
        byte = raw[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            break
    target = raw[pos : pos + length]
    if len(target) != length or not target.startswith((b"http://", b"https://")):
        return None
    return target.decode("utf-8", "replace")
