"""Canonical URLs: the key stories are deduplicated on, apart from the URL shown to readers.

Both functions are pure and never raise; they return ``None`` for anything that is not an
absolute ``http``/``https`` URL with a plausible host (``javascript:``, ``mailto:``,
relative paths, garbage). Both first repair what publishers get wrong (``http:/x``,
``http:\\\\x``, ``http://http://x``), unwrap redirectors whose target is in the URL
(:mod:`core.feeds.url_redirects`), and drop tracking parameters and tracking fragments
(:mod:`core.feeds.url_rules`).

:func:`clean_url` is the URL shown to readers: otherwise as published (scheme, ``www.``,
``m.``, path, parameter order, fragment), made safe to put in a link.

:func:`canonicalize` is the dedupe key, ``host[:port]/path[?query][#fragment]``. One
article under these variants has one key: ``http``/``https``; ``www.``, ``m.``,
``mobile.``, ``amp.`` hosts; AMP switches (``?amp=1``, ``?outputType=amp``, a final
``/amp`` segment after an article slug); a directory index page (``/index.html``); ``//``
in the path; query order (w3lib's percent-encoding and dot segments as well); YouTube's
``youtu.be/ID``, ``/shorts/ID`` and ``/embed/ID`` (-> ``/watch?v=ID``); the case of a
FeedBurner ``/~r/`` path; in-article anchors (``#comments``, ``#more-12``).

Two articles never share a key: the path stays case-sensitive; ``/amp`` after a one-word
segment is content (``/reviews/guitar/amp``); repeated parameters keep their order
(``?x=1&x=2`` is not ``?x=2&x=1``); fragments other than in-article anchors stay in the
key, so ``/#!/story/1`` and ``/#!/story/2``, or posts told apart only by ``#a1``/``#a2``,
are different stories. That fragment rule looks at the URL alone, never at the other
entries of a document, so a post keeps its key from one fetch to the next. Trailing
slashes, other subdomains (``beta.``, ``blog.``) and ``www2.`` stay as given: servers
answer differently for them often enough that a merge could hide a story, while a missed
merge only shows one twice.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import SplitResult, unquote, unquote_plus, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, safe_url_string

from core.feeds.url_redirects import MAX_UNWRAP_DEPTH, unwrap
from core.feeds.url_rules import (
    AMP_PARAMS,
    ARTICLE_SEGMENT,
    HOST_TRACKING_PARAMS,
    INDEX_PAGES,
    NAVIGATION_FRAGMENT,
    TRACKING_FRAGMENT,
    TRACKING_PARAMS,
    TRACKING_PREFIXES,
    TRACKING_VALUES,
    VARIANT_HOST_PREFIXES,
    YOUTUBE_HOSTS,
    YOUTUBE_SHORT_PATH,
    YOUTUBE_VIDEO_PATH,
)

#: Longest URL accepted, in characters (longer ones are junk or attacks, not articles).
MAX_URL_CHARS = 4096
#: URLs whose key and shown form are remembered per process: a feed lists the same items
#: fetch after fetch, and an entry's id is often its link again (pure functions, so safe).
URL_CACHE_SIZE = 8192

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
#: A scheme written twice (``http://http://x``, ``http://https//x``): the outer one goes.
_DOUBLED_SCHEME = re.compile(r"(?i)^https?:/*(?=https?:?/)")
#: An http(s) scheme and whatever slashes follow it (``http:/``, ``http:\\``, ``http:///``).
_SCHEME_SLASHES = re.compile(r"(?i)^(https?)(:?)([\\/]*)")
#: An ampersand left HTML-escaped in a link: ``?a=1&#038;b=2`` is ``?a=1&b=2``.
_ESCAPED_AMPERSAND = re.compile(r"(?i)&(?:amp|#0*38|#x0*26);")
#: Repeated slashes in a path.
_SLASHES = re.compile(r"/{2,}")


def repair_url(url: str) -> str:
    """``url`` with a broken scheme mended: ``http:/x``, ``http:\\\\x``, ``http:x``,
    ``http:///x`` and ``http://http://x`` all become ``http://x``, and backslashes before
    the query become slashes (as browsers read them). An ampersand escaped twice by the
    feed (``&#038;``, ``&amp;``) is one ``&`` again. Anything else comes back as is."""
    url = _ESCAPED_AMPERSAND.sub("&", url)
    while doubled := _DOUBLED_SCHEME.match(url):
        url = url[doubled.end() :]
    scheme = _SCHEME_SLASHES.match(url)
    if scheme is None or not (scheme.group(2) or scheme.group(3)):
        return url  # not http(s), or "https.example.com" (a relative path)
    rest = url[scheme.end() :]
    cut = min((at for at in (rest.find("?"), rest.find("#")) if at >= 0), default=len(rest))
    address = rest[:cut].replace("\\", "/")
    return f"{scheme.group(1)}://{address}{rest[cut:]}"


def resolve_http_url(link: object, base: str) -> str | None:
    """``link`` repaired and resolved against ``base`` when the result is http(s), else
    ``None``. ``javascript:``/``data:`` links never leave the parser, so nothing can
    render them; the repair comes first, so ``http:/x.com/a`` is never joined onto the
    feed's own host."""
    if not isinstance(link, str):
        return None
    link = link.strip()
    if not link or len(link) > MAX_URL_CHARS or _CONTROL_CHAR.search(link):
        return None
    try:
        link.encode("utf-8")  # lone surrogates from undecodable bytes: not a usable URL
        link = repair_url(link)
        absolute = urljoin(base, link) if base else link
        parts = urlsplit(absolute)
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.netloc:
        return None
    return absolute


def clean_url(url: str) -> str | None:
    """The URL to show readers: as published, less tracking and redirect wrappers."""
    return _clean_url(url) if isinstance(url, str) else None


def canonicalize(url: str) -> str | None:
    """The dedupe key of an absolute http(s) URL, or ``None`` when it is not one."""
    return _canonicalize(url) if isinstance(url, str) else None


@lru_cache(maxsize=URL_CACHE_SIZE)
def _clean_url(url: str) -> str | None:
    try:
        parts = _cleaned(url)
        if parts is None:
            return None
        shown = safe_url_string(urlunsplit(parts))
        return shown if _host_of(urlsplit(shown)) is not None else None
    except (ValueError, UnicodeError):
        # urlsplit rejects bad IPv6 literals and ports; IDNA rejects over-long labels.
        return None


@lru_cache(maxsize=URL_CACHE_SIZE)
def _canonicalize(url: str) -> str | None:
    try:
        parts = _cleaned(url)
        return None if parts is None else _key(parts)
    except (ValueError, UnicodeError):
        return None


def guid_key(guid: str | None) -> str | None:
    """The key of an entry id that names one item everywhere, else ``None``.

    ``tag:`` and ``urn:`` ids and http(s) URLs other than a home page are minted to be
    unique across feeds; two entries carrying one are the same item, whatever their
    links say (a FeedBurner copy without ``origLink``, an aggregator's copy, a post whose
    slug was edited). Ids like ``123`` or ``yt:video:x`` are unique within a feed only.
    """
    guid = (guid or "").strip()
    if not guid or len(guid) > MAX_URL_CHARS or _CONTROL_CHAR.search(guid):
        return None
    if guid[:4].lower() in ("tag:", "urn:"):
        return guid
    key = canonicalize(guid) if guid[:4].lower() == "http" else None
    return key if key and key.partition("/")[2] else None  # a home page names no item


@lru_cache(maxsize=URL_CACHE_SIZE)  # shared by the shown URL and the key of one link
def _cleaned(url: str) -> SplitResult | None:
    """``url`` repaired, unwrapped, without tracking parameters, fragment or user info."""
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or _CONTROL_CHAR.search(url):
        return None
    parts = _split_http(repair_url(url))
    if parts is None:
        return None
    for _ in range(MAX_UNWRAP_DEPTH):
        target = unwrap(parts)
        if target is None:
            break
        unwrapped = _split_http(repair_url(target))
        if unwrapped is None:
            break  # the wrapper's target is not http(s): keep the wrapper itself
        parts = unwrapped
    host = (parts.hostname or "").rstrip(".")
    fragment = "" if TRACKING_FRAGMENT.match(unquote(parts.fragment)) else parts.fragment
    return parts._replace(
        netloc=parts.netloc.rpartition("@")[2],
        query=_without_tracking(parts.query, host),
        fragment=fragment,
    )


def _split_http(url: str) -> SplitResult | None:
    """``urlsplit(url)`` when it is absolute http(s) with a host, else ``None``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    parts.port  # noqa: B018 -- raises ValueError on a non-numeric or out-of-range port
    return parts._replace(scheme=scheme)


def _host_of(parts: SplitResult) -> str | None:
    host = (parts.hostname or "").rstrip(".")
    return host if _VALID_HOST.match(host) else None


def _pairs(query: str) -> list[tuple[str, str, str]]:
    """``(pair as written, lower-case decoded name, decoded value)`` of each parameter."""
    found = []
    for pair in query.split("&"):
        if pair:
            raw_name, _, raw_value = pair.partition("=")
            found.append((pair, unquote_plus(raw_name).lower(), unquote_plus(raw_value)))
    return found


def _without_tracking(query: str, host: str) -> str:
    """``query`` without tracking parameters; the others kept byte for byte, in order."""
    if not query:
        return query
    for_host = _host_params(host)
    kept = []
    for pair, name, value in _pairs(query):
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES) or name in for_host:
            continue
        pattern = TRACKING_VALUES.get(name)
        if pattern is not None and pattern.match(value):
            continue
        kept.append(pair)
    return "&".join(kept)


def _host_params(host: str) -> frozenset[str]:
    """The site-specific tracking parameters of ``host`` or a domain it belongs to."""
    labels = host.lower().split(".")
    found: frozenset[str] = frozenset()
    for start in range(len(labels) - 1):
        found |= HOST_TRACKING_PARAMS.get(".".join(labels[start:]), frozenset())
    return found


def _key(parts: SplitResult) -> str | None:
    path = _SLASHES.sub("/", parts.path)
    normal = urlsplit(
        canonicalize_url(
            urlunsplit((parts.scheme, parts.netloc, path, "", parts.fragment)),
            keep_fragments=True,
        )
    )
    host = _host_of(normal)
    if host is None:
        return None
    host = _variant_free(host)
    path, query = _youtube(host, normal.path, parts.query)
    if host in ("youtu.be", "youtube-nocookie.com") and path.startswith("/watch"):
        host = "youtube.com"
    if path.startswith("/~r/"):
        path = path.lower()  # FeedBurner's feed names and item tokens ignore case
    netloc = f"[{host}]" if ":" in host else host
    if normal.port is not None and normal.port != _DEFAULT_PORTS[normal.scheme]:
        netloc = f"{netloc}:{normal.port}"
    query = _key_query(query)
    fragment = "" if NAVIGATION_FRAGMENT.match(unquote(normal.fragment)) else normal.fragment
    return (
        netloc
        + _without_amp_segment(_without_index_page(path))
        + (f"?{query}" if query else "")
        + (f"#{fragment}" if fragment else "")
    )


def _variant_free(host: str) -> str:
    """``host`` without ``www.``/``m.``/``mobile.``/``amp.``, while a dotted name is left."""
    changed = True
    while changed:
        changed = False
        for prefix in VARIANT_HOST_PREFIXES:
            rest = host.removeprefix(prefix)
            if rest != host and "." in rest:
                host, changed = rest, True
    return host


def _youtube(host: str, path: str, query: str) -> tuple[str, str]:
    """A YouTube video's path and query in its ``/watch?v=ID`` form."""
    if host == "youtu.be":
        match = YOUTUBE_SHORT_PATH.match(path)
    elif host in YOUTUBE_HOSTS:
        match = YOUTUBE_VIDEO_PATH.match(path)
    else:
        return path, query
    if match is None:
        return path, query
    return "/watch", "&".join(filter(None, (f"v={match.group(1)}", query)))


def _key_query(query: str) -> str:
    """Parameters in the key: no AMP switch, no nameless pair, w3lib's encoding, sorted by
    name with repeated names in their published order (their order can be content)."""
    kept = []
    for pair, name, value in _pairs(query):
        pattern = AMP_PARAMS.get(name)
        if not name or (pattern is not None and pattern.match(value)):
            continue
        kept.append(urlsplit(canonicalize_url(f"http://h/?{pair}")).query)
    kept.sort(key=lambda pair: pair.partition("=")[0])  # stable
    return "&".join(kept)


def _without_index_page(path: str) -> str:
    head, _, last = path.rpartition("/")
    return f"{head}/" if last.lower() in INDEX_PAGES else path


def _without_amp_segment(path: str) -> str:
    """Drop a final ``amp`` segment (``/slug/amp/``) when the segment before it names an
    article; the trailing slash stays as published (``/slug/amp/`` -> ``/slug/``)."""
    trimmed = path.rstrip("/")
    head, _, last = trimmed.rpartition("/")
    if last.lower() != "amp":
        return path
    parent = head.rpartition("/")[2]
    if not parent or not ARTICLE_SEGMENT.match(parent):
        return path
    return f"{head}/" if path.endswith("/") else head
