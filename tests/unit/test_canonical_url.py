"""canonicalize(): the rule table of core.feeds.canonical_url, one row per rule."""

from __future__ import annotations

import pytest

from core.feeds.canonical_url import (
    TRACKING_PARAMS,
    TRACKING_PREFIXES,
    canonicalize,
    resolve_http_url,
)

SAME = object()  # marker: the URL is already canonical

CASES = [
    # lower-case scheme and host, default ports, fragments, user info
    ("HTTP://WWW.Example.COM/Path", "http://www.example.com/Path"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com/a#section-2", "https://example.com/a"),
    ("https://user:secret@example.com/a", "https://example.com/a"),
    ("https://example.com./a", "https://example.com/a"),
    # empty path becomes "/"; trailing slash otherwise kept as given (documented policy)
    ("https://example.com", "https://example.com/"),
    ("https://example.com/a/", SAME),
    ("https://example.com/a", SAME),
    # query sorted, percent-encoding normalised, IDNA host
    ("https://example.com/?b=2&a=1", "https://example.com/?a=1&b=2"),
    ("https://example.com/a%7eb/%e2%82%ac", "https://example.com/a~b/%E2%82%AC"),
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("https://bücher.de/ü?q=ü", "https://xn--bcher-kva.de/%C3%BC?q=%C3%BC"),
    ("https://example.com/./a/../b", "https://example.com/b"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    # tracking parameters
    ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7", "https://example.com/a?id=7"),
    ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
    ("https://example.com/a?fbclid=1&gclid=2&dclid=3&msclkid=4", "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&yclid=4", "https://example.com/a"),
    ("https://example.com/a?_hsenc=1&_hsmi=2&oly_enc_id=3&vero_id=4", "https://example.com/a"),
    ("https://example.com/a?WT.mc_id=x&ref_src=twsrc", "https://example.com/a"),
    ("https://example.com/a?ref=rss", "https://example.com/a"),
    ("https://github.com/o/r/blob/x?ref=main", SAME),  # ref as a branch is content
    ("https://medium.com/p/abc?source=rss----7f60cf5620c9---4", "https://medium.com/p/abc"),
    ("https://example.com/search?source=web&q=x", "https://example.com/search?q=x&source=web"),
    ("https://example.com/?q=utm_source", SAME),  # only names are matched, not values
    # redirect wrappers whose target is in the URL
    (
        "https://www.google.com/url?rct=j&sa=t&url=https://www.example.com/story%3Futm_source%3Dx"
        "&ct=ga&cd=CAE",
        "https://www.example.com/story",
    ),
    ("https://www.google.com/url?q=https://example.com/a&sa=D", "https://example.com/a"),
    ("https://news.google.com/news/url?sa=t&url=https://example.com/n", "https://example.com/n"),
    (
        "https://news.google.com/__i/rss/rd/articles/"
        "CBMiL2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvMjAyMC8wMy9zdG9yeS5odG1s0gEA",
        "https://www.example.com/news/2020/03/story.html",
    ),
    ("https://news.google.com/rss/articles/CBMiAU_yqLNOPAQUE?oc=5", SAME),  # opaque id: kept
    ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fa&h=AT0", "https://example.com/a"),
    ("https://t.umblr.com/redirect?z=http%3A%2F%2Fexample.com%2Fa&t=x", "http://example.com/a"),
    (
        "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1&url=https%3a%2f%2fexample.com"
        "%2fa.html&c=1&mkt=es-es",
        "https://example.com/a.html",
    ),
    (
        "https://out.reddit.com/t3_abc?url=https%3A%2F%2Fexample.com%2Fa&token=x",
        "https://example.com/a",
    ),
    # nested wrappers are unwrapped to the end
    (
        "https://www.google.com/url?q=https%3A%2F%2Fl.facebook.com%2Fl.php%3Fu%3Dhttps%253A%252F%252Fexample.com%252Fz",
        "https://example.com/z",
    ),
    # a wrapper pointing at a non-http target is kept as the wrapper (never the target)
    (
        "https://l.facebook.com/l.php?u=javascript:alert(1)",
        "https://l.facebook.com/l.php?u=javascript%3Aalert%281%29",
    ),
    # FeedBurner tokens are opaque: kept (the parser prefers feedburner:origLink instead)
    ("http://feedproxy.google.com/~r/Blog/~3/AbC/post.html", SAME),
    # AMP variants
    ("https://www.example.com/2024/01/story/amp/", "https://www.example.com/2024/01/story/"),
    ("https://www.example.com/2024/01/story/amp", "https://www.example.com/2024/01/story/"),
    ("https://www.example.com/a?amp=1&id=3", "https://www.example.com/a?id=3"),
    ("https://www.example.com/a?amp", "https://www.example.com/a"),
    ("https://www.example.com/a?outputType=amp", "https://www.example.com/a"),
    ("https://www.example.com/a?amp=0", SAME),  # amp=0 is not the AMP switch
    ("https://amp.theguardian.com/world/2020/x", "https://www.theguardian.com/world/2020/x"),
    ("https://amp.example.com/a", SAME),  # unknown amp. hosts: path mapping unknown, kept
    (
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a?x=1",
        "https://www.example.com/a?x=1",
    ),
    ("https://www-example-com.cdn.ampproject.org/v/example.com/a", "http://example.com/a"),
    ("https://www.google.com/amp/s/www.example.com/a/amp/", "https://www.example.com/a/"),
    ("https://www.example.com/amp/", SAME),  # "amp" as the only segment is a real page
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_canonicalize_rule_table(url: str, expected: object) -> None:
    assert canonicalize(url) == (url if expected is SAME else expected)


@pytest.mark.parametrize("url", [row[0] for row in CASES])
def test_canonicalize_is_idempotent(url: str) -> None:
    once = canonicalize(url)
    assert once is not None
    assert canonicalize(once) == once


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://example.com/a",
        "mailto:a@example.com",
        "gopher://example.com/",
        "/relative/path",
        "//example.com/protocol-relative",
        "example.com/no-scheme",
        "http://",
        "http:///path-only",
        "http://exa mple.com/",
        "http://a..b/",
        "http://[::1/",
        "http://example.com:99999/",
        "http://example.com:port/",
        "https://" + "a" * 64 + ".com/",  # IDNA label over 63 characters
        "https://example.com/" + "a" * 5000,
        "http://\ud800.com/",
        "\x00\x01\x02",
    ],
)
def test_non_http_or_garbage_urls_are_rejected_with_none(url: str) -> None:
    assert canonicalize(url) is None


def test_canonicalize_never_raises_on_non_strings() -> None:
    assert canonicalize(None) is None  # type: ignore[arg-type]
    assert canonicalize(b"https://example.com/") is None  # type: ignore[arg-type]


def test_tracking_table_covers_the_documented_names() -> None:
    for name in ("fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid",
                 "_hsenc", "_hsmi", "wt.mc_id", "ref_src"):  # fmt: skip
        assert name in TRACKING_PARAMS
    for prefix in ("utm_", "oly_", "vero_"):
        assert prefix in TRACKING_PREFIXES


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("/a/b", "https://example.org/feed.xml", "https://example.org/a/b"),
        ("b", "https://example.org/feeds/main", "https://example.org/feeds/b"),
        ("//cdn.example.org/x", "https://example.org/", "https://cdn.example.org/x"),
        ("https://other.org/x", "https://example.org/", "https://other.org/x"),
        ("javascript:alert(1)", "https://example.org/", None),
        ("/a", "", None),
        ("http://example.org/a\x00b", "", None),
        ("  https://example.org/a  ", "", "https://example.org/a"),
    ],
)
def test_resolve_http_url_resolves_against_the_base_and_keeps_only_http(
    link: str, base: str, expected: str | None
) -> None:
    assert resolve_http_url(link, base) == expected
