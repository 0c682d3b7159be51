"""Canonical form of an entry URL, the key stories are deduplicated on.

:func:`canonicalize` is pure and never raises: it returns ``None`` for anything that is not
an absolute ``http``/``https`` URL with a plausible host (``javascript:``, ``mailto:``,
``file:``, relative paths, garbage). The steps, in order:

1. Unwrap known redirectors whose target is *in* the URL (:data:`REDIRECT_PARAMS`,
   Google News article ids, AMP caches); up to :data:`MAX_UNWRAP_DEPTH` levels.
   FeedBurner/feedproxy links carry an opaque token, so they are not unwrapped here: the
   parser prefers the entry's ``feedburner:origLink`` instead.
2. Drop tracking query parameters (:data:`TRACKING_PARAMS`, :data:`TRACKING_PREFIXES`,
   :data:`TRACKING_VALUES`) and AMP switches (:data:`AMP_PARAMS`).
3. ``w3lib.url.canonicalize_url``: sorted query, normalised percent-encoding, IDNA host,
   lower-case scheme/host, no fragment, ``/`` for an empty path.
4. Drop user info and default ports, a trailing dot on the host, AMP path/host variants
   (:data:`AMP_HOSTS`, a final ``/amp`` path segment).

Trailing slash policy: kept as given (``/a`` and ``/a/`` stay different). Many servers
serve different resources for the two, and we cannot ask without fetching; a false merge
hides a story, a missed merge only shows it twice (and title clustering catches most).
``www.`` is kept for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import (
    SplitResult,
    parse_qsl,
    unquote,
    unquote_plus,
    urljoin,
    urlsplit,
    urlunsplit,
)

from w3lib.url import canonicalize_url

#: Longest URL accepted, in characters (longer ones are junk or attacks, not articles).
MAX_URL_CHARS = 4096
#: Nested redirect wrappers unwrapped at most (Google Alerts -> Google News -> site).
MAX_UNWRAP_DEPTH = 3

#: Redirectors carrying the target URL in a query parameter: (host, path prefix) -> param.
REDIRECT_PARAMS: dict[tuple[str, str], str] = {
    ("news.google.com", "/"): "url",  # news.google.com/news/url?...&url=<target>
    ("www.google.com", "/url"): "url",  # Google Alerts: ...&url=<target>; classic uses q
    ("google.com", "/url"): "url",
    ("l.facebook.com", "/l.php"): "u",
    ("lm.facebook.com", "/l.php"): "u",
    ("t.umblr.com", "/redirect"): "z",
    ("www.bing.com", "/news/apiclick.aspx"): "url",
    ("bing.com", "/news/apiclick.aspx"): "url",
    ("out.reddit.com", "/"): "url",
    ("www.youtube.com", "/redirect"): "q",
}
#: Fallback parameters of the same redirectors (``google.com/url?q=<target>``).
REDIRECT_FALLBACK_PARAMS: dict[tuple[str, str], str] = {
    ("www.google.com", "/url"): "q",
    ("google.com", "/url"): "q",
}

#: Query parameters that only identify a campaign, click or referrer (Miniflux urlcleaner).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",  # Facebook click id
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid",  # Google Ads / DoubleClick
        "msclkid",  # Microsoft Ads
        "yclid", "ysclid",  # Yandex
        "twclid", "ttclid", "li_fat_id",  # Twitter, TikTok, LinkedIn
        "igshid", "igsh",  # Instagram share id
        "mc_cid", "mc_eid",  # Mailchimp
        "_hsenc", "_hsmi", "hsctatracking",  # HubSpot
        "mkt_tok",  # Marketo
        "wt.mc_id",  # Microsoft/Webtrends campaign id
        "ref_src", "ref_url",  # Twitter embeds
        "_ga", "_gl",  # Google Analytics cross-domain linker
        "srsltid",  # Google Merchant
        "_openstat", "rb_clickid",
        "at_medium", "at_campaign",  # AT Internet
    }
)  # fmt: skip
#: Parameter-name prefixes that are tracking-only (``utm_source``, ``oly_enc_id``, ...).
TRACKING_PREFIXES = ("utm_", "oly_", "vero_", "__hs", "hsa_", "mtm_", "pk_", "piwik_")
#: Ambiguous parameters dropped only with tracking values: ``ref`` is a branch on GitHub
#: but ``?ref=rss`` elsewhere; Medium/Hacker Noon append ``source=rss----<hash>``.
TRACKING_VALUES: dict[str, re.Pattern[str]] = {
    "ref": re.compile(r"(?i)^(rss|feed|feeds|feedly|atom|newsletter|twitter|facebook|hn)$"),
    "source": re.compile(r"(?i)^rss\b"),
}
#: Query switches that only select the AMP rendering of the same article.
AMP_PARAMS: dict[str, re.Pattern[str]] = {
    "amp": re.compile(r"(?i)^(|1|true|yes)$"),
    "outputtype": re.compile(r"(?i)^amp$"),
}
#: AMP hosts whose article paths equal the canonical site's (checked by hand).
AMP_HOSTS: dict[str, str] = {
    "amp.theguardian.com": "www.theguardian.com",
}
#: AMP caches: ``<anything>.cdn.ampproject.org/{c,v}/[s/]<host>/<path>``.
_AMP_CACHE_PATH = re.compile(r"^/(?:c|v)/(s/)?([^/]+)(/.*)?$")
#: Google's AMP viewer ``www.google.com/amp/s/<host>/<path>``.
_GOOGLE_AMP_PATH = re.compile(r"^/amp/(s/)?([^/]+\.[^/]+)(/.*)?$")
#: Google News article ids (``/rss/articles/CBMi...``) that embed the target URL.
_GOOGLE_NEWS_ARTICLE = re.compile(r"^(?:/__i)?/rss(?:/rd)?/articles/([A-Za-z0-9_-]+)")
#: Control characters, never part of a usable link.
_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
#: Default port per scheme, dropped.
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A host after IDNA encoding: dot-separated DNS labels of 1-63 characters (RFC 1035),
#: at most 253 in all, or an IPv6 literal (urlsplit has removed the brackets).
_VALID_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$|^(?=[^:]*:)[0-9a-f:.]+$"
)


def canonicalize(url: str) -> str | None:
    """The canonical form of an absolute http(s) URL, or ``None`` when it is not one."""
    try:
        return _canonicalize(url)
    except (ValueError, UnicodeError):
        # urlsplit rejects bad IPv6 literals and ports; IDNA rejects over-long labels.
        return None


def resolve_http_url(link: object, base: str) -> str | None:
    """``link`` resolved against ``base`` when the result is http(s), else ``None``.

    ``javascript:``/``data:`` links never leave the parser, so nothing can render them.
    """
    if not isinstance(link, str):
        return None
    link = link.strip()
    if not link or len(link) > MAX_URL_CHARS or _CONTROL_CHAR.search(link):
        return None
    try:
        link.encode("utf-8")  # lone surrogates from undecodable bytes: not a usable URL
        absolute = urljoin(base, link) if base else link
        parts = urlsplit(absolute)
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _canonicalize(url: str) -> str | None:
    url = url.strip() if isinstance(url, str) else ""
    if not url or len(url) > MAX_URL_CHARS:
        return None
    parts = _split_http(url)
    if parts is None:
        return None
    for _ in range(MAX_UNWRAP_DEPTH):
        target = _unwrap(parts)
        if target is None:
            break
        unwrapped = _split_http(target)
        if unwrapped is None:
            break  # the wrapper's target is not http(s): keep the wrapper itself
        parts = unwrapped
    query = _clean_query(parts.query)
    url = canonicalize_url(urlunsplit(parts._replace(query=query)), keep_fragments=False)
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if not _VALID_HOST.match(host):
        return None
    host = AMP_HOSTS.get(host, host)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
        netloc = f"{netloc}:{parts.port}"
    path = _strip_amp_segment(parts.path)
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def _split_http(url: str) -> SplitResult | None:
    """``urlsplit(url)`` when it is absolute http(s) with a host, else ``None``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    parts.port  # noqa: B018 -- raises ValueError on a non-numeric or out-of-range port
    return parts._replace(scheme=scheme)


def _unwrap(parts: SplitResult) -> str | None:
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


def _clean_query(query: str) -> str:
    """``query`` without tracking and AMP parameters; other pairs kept byte for byte."""
    if not query:
        return query
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition("=")
        name = unquote_plus(raw_name).lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        pattern = TRACKING_VALUES.get(name) or AMP_PARAMS.get(name)
        if pattern is not None and pattern.match(unquote_plus(raw_value)):
            continue
        kept.append(pair)
    return "&".join(kept)


def _strip_amp_segment(path: str) -> str:
    """Drop a final ``amp`` path segment (WordPress AMP plugin: ``/slug/amp/``)."""
    for suffix in ("/amp/", "/amp"):
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)] + "/"
    return path
