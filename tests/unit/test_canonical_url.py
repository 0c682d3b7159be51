"""The rule tables of core.feeds.canonical_url: the dedupe key, the URL shown, the repairs.

Rows marked "MC" come from Media Cloud's URL normalization tests; every case that must
merge has its key row or a MERGE group, every case that must stay apart an APART row.
"""

from __future__ import annotations

import pytest

from core.feeds.canonical_url import (
    canonicalize,
    clean_url,
    guid_key,
    repair_url,
    resolve_http_url,
)
from core.feeds.url_rules import TRACKING_PARAMS, TRACKING_PREFIXES

KEY_CASES = [
    # scheme, host case, default ports, user info, trailing dot; www./m./mobile./amp. hosts
    ("HTTP://WWW.Example.COM/Path", "example.com/Path"),
    ("https://example.com:443/a", "example.com/a"),
    ("http://example.com:80/a", "example.com/a"),
    ("https://example.com:8443/a", "example.com:8443/a"),
    ("https://user:secret@example.com/a", "example.com/a"),
    ("https://example.com./a", "example.com/a"),
    ("https://m.example.co.uk/a", "example.co.uk/a"),
    ("https://mobile.example.com/a", "example.com/a"),
    ("https://amp.example.com/a", "example.com/a"),
    ("https://www.m.example.com/a", "example.com/a"),
    ("https://www.com/a", "www.com/a"),  # nothing dotted would be left
    ("https://amp.theguardian.com/world/2020/x", "theguardian.com/world/2020/x"),
    ("https://www.gpo.gov:/fdsys/pkg/PL", "gpo.gov/fdsys/pkg/PL"),  # MC: empty port
    ("http://[::1]:8080/x", "[::1]:8080/x"),
    # empty path is "/"; trailing slash kept as given; path case kept
    ("https://example.com", "example.com/"),
    ("http://foo.bar?baz=bat", "foo.bar/?baz=bat"),  # MC: missing / before ?
    ("https://example.com/a/", "example.com/a/"),
    ("https://example.com/a", "example.com/a"),
    # paths: w3lib's percent-encoding, IDNA, dot segments; "//" and directory index pages
    ("https://example.com/a%7eb/%e2%82%ac", "example.com/a~b/%E2%82%AC"),
    ("https://example.com/a b", "example.com/a%20b"),
    ("https://bücher.de/ü?q=ü", "xn--bcher-kva.de/%C3%BC?q=%C3%BC"),
    ("https://example.com/./a/../b", "example.com/b"),
    ("http://foo.com/bar/baz//foo", "foo.com/bar/baz/foo"),  # MC
    ("https://example.com/news/index.html", "example.com/news/"),
    ("https://example.com/index.htm", "example.com/"),
    ("https://example.com/blog/index.php?p=3", "example.com/blog/?p=3"),
    ("https://example.com/index.html/more", "example.com/index.html/more"),  # not last
    # query: sorted by name, repeated names keep their order, nameless pairs dropped
    ("https://example.com/?b=2&a=1", "example.com/?a=1&b=2"),
    ("https://example.com/?x=2&a=1&x=1", "example.com/?a=1&x=2&x=1"),
    (
        "http://www-nc.nytimes.com/2011/06/29/us/29marriage.html?=_r%3D6",  # MC
        "www-nc.nytimes.com/2011/06/29/us/29marriage.html",
    ),
    ("http://bash.org/?244321", "bash.org/?244321="),  # MC: the query is the article
    # tracking parameters, generic and per site
    ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7", "example.com/a?id=7"),
    ("https://example.com/a?UTM_Campaign=x", "example.com/a"),
    ("https://example.com/a?fbclid=1&gclid=2&dclid=3&msclkid=4", "example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2&igshid=3&yclid=4", "example.com/a"),
    ("https://example.com/a?_hsenc=1&_hsmi=2&oly_enc_id=3&vero_id=4", "example.com/a"),
    ("https://example.com/a?WT.mc_id=x&wt_mc=y&ref_src=twsrc", "example.com/a"),
    ("https://example.com/a?cmpid=1&ocid=2&ITO=3&ncid=4", "example.com/a"),
    ("https://example.com/a?ns_campaign=1&ns_mchannel=2&ns_source=3", "example.com/a"),
    ("https://example.com/a?ref=rss", "example.com/a"),
    ("https://github.com/o/r/blob/x?ref=main", "github.com/o/r/blob/x?ref=main"),
    ("https://medium.com/p/abc?source=rss----7f60cf5620c9---4", "medium.com/p/abc"),
    ("https://example.com/search?source=web&q=x", "example.com/search?q=x&source=web"),
    ("https://example.com/?q=utm_source", "example.com/?q=utm_source"),  # names only
    ("https://example.com/watch?si=5", "example.com/watch?si=5"),  # si: YouTube's only
    ("https://www.facebook.com/BerkmanCenter?ref=br_tf", "facebook.com/BerkmanCenter"),  # MC
    (
        "http://www.nytimes.com/2014/08/19/upshot/inequality.html?smid=fb-nytimes&"  # MC
        "WT.z_sma=UP_IOA_20140819&bicmp=AD&bicmlukp=WT.mc_id&bicmst=1388552400000&"
        "bicmet=1420088400000&_r=1&abt=0002&abg=1",
        "nytimes.com/2014/08/19/upshot/inequality.html",
    ),
    (
        "http://www.adelaidenow.com.au/news/story-fni6uo1m-1227184460050"  # MC
        "?nk=440cd48fd95a4e1f1c23bcd15df36da7",
        "adelaidenow.com.au/news/story-fni6uo1m-1227184460050",
    ),
    ("https://www.theguardian.com/a?CMP=share_btn_tw&INTCMP=x", "theguardian.com/a"),
    # YouTube: one video, one key
    ("https://youtu.be/aFCO6WidGVM?si=Xy_12", "youtube.com/watch?v=aFCO6WidGVM"),
    ("https://www.youtube.com/watch?v=aFCO6WidGVM", "youtube.com/watch?v=aFCO6WidGVM"),  # MC
    (
        "https://m.youtube.com/watch?v=aFCO6WidGVM&feature=share&si=z",
        "youtube.com/watch?v=aFCO6WidGVM",
    ),
    ("https://www.youtube.com/shorts/aFCO6WidGVM", "youtube.com/watch?v=aFCO6WidGVM"),
    ("https://www.youtube-nocookie.com/embed/aFCO6WidGVM", "youtube.com/watch?v=aFCO6WidGVM"),
    ("https://www.youtube.com/watch?v=aFCO6WidGVM&t=42", "youtube.com/watch?t=42&v=aFCO6WidGVM"),
    ("https://www.youtube.com/@channel", "youtube.com/@channel"),
    # redirect wrappers whose target is in the URL
    (
        "https://www.google.com/url?rct=j&sa=t&url=https://www.example.com/story%3Futm_source%3Dx"
        "&ct=ga&cd=CAE",
        "example.com/story",
    ),
    ("https://www.google.com/url?q=https://example.com/a&sa=D", "example.com/a"),
    ("https://news.google.com/news/url?sa=t&url=https://example.com/n", "example.com/n"),
    (
        "https://news.google.com/__i/rss/rd/articles/"
        "CBMiL2h0dHBzOi8vd3d3LmV4YW1wbGUuY29tL25ld3MvMjAyMC8wMy9zdG9yeS5odG1s0gEA",
        "example.com/news/2020/03/story.html",
    ),
    (
        "https://news.google.com/rss/articles/CBMiAU_yqLNOPAQUE?oc=5",
        "news.google.com/rss/articles/CBMiAU_yqLNOPAQUE?oc=5",
    ),  # opaque id
    ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.com%2Fa&h=AT0", "example.com/a"),
    ("https://t.umblr.com/redirect?z=http%3A%2F%2Fexample.com%2Fa&t=x", "example.com/a"),
    (
        "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1&url=https%3a%2f%2fexample.com"
        "%2fa.html&c=1&mkt=es-es",
        "example.com/a.html",
    ),
    ("https://out.reddit.com/t3_abc?url=https%3A%2F%2Fexample.com%2Fa&token=x", "example.com/a"),
    (
        "https://archive.is/o/vWkgm/www.huffingtonpost.com/lisa-bloom/why-ca_b_10619944.html",  # MC
        "huffingtonpost.com/lisa-bloom/why-ca_b_10619944.html",
    ),
    (
        "https://www.google.com/url?q=https%3A%2F%2Fl.facebook.com%2Fl.php%3Fu%3Dhttps%253A%252F%252Fexample.com%252Fz",
        "example.com/z",
    ),
    (
        "https://l.facebook.com/l.php?u=javascript:alert(1)",  # non-http target: the wrapper
        "l.facebook.com/l.php?u=javascript%3Aalert%281%29",
    ),
    # FeedBurner tokens are opaque (the parser prefers feedburner:origLink); case ignored
    (
        "http://feedproxy.google.com/~r/Blog/~3/AbC/post.html",
        "feedproxy.google.com/~r/blog/~3/abc/post.html",
    ),
    # AMP variants: a final /amp after an article slug, AMP switches, caches and viewers
    (
        "https://www.example.com/2024/01/city-council-votes/amp/",
        "example.com/2024/01/city-council-votes/",
    ),
    ("https://www.example.com/news/world-12345/amp", "example.com/news/world-12345"),
    ("https://www.example.com/news/story.html/amp", "example.com/news/story.html"),
    ("https://www.example.com/a?amp=1&id=3", "example.com/a?id=3"),
    ("https://www.example.com/a?amp", "example.com/a"),
    ("https://www.example.com/a?outputType=amp", "example.com/a"),
    ("https://www.example.com/a?amp=0", "example.com/a?amp=0"),  # not the AMP switch
    (
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a?x=1",
        "example.com/a?x=1",
    ),
    ("https://www-example-com.cdn.ampproject.org/v/example.com/a", "example.com/a"),
    ("https://www.google.com/amp/s/www.example.com/my-post/amp/", "example.com/my-post/"),
    ("https://www.example.com/amp/", "example.com/amp/"),  # the only segment: a real page
    ("https://www.example.com/category/amp/", "example.com/category/amp/"),
    ("https://www.example.com/reviews/guitar/amp", "example.com/reviews/guitar/amp"),
    # fragments: tracking and in-article anchors go; routes and post anchors stay
    ("https://example.com/a#comments", "example.com/a"),
    ("https://example.com/a#more-1234", "example.com/a"),
    ("https://example.com/a#xtor=RSS-3", "example.com/a"),
    ("https://example.com/a#ixzz2abcDEF", "example.com/a"),
    ("https://example.com/a#.U1Fj3kxK", "example.com/a"),
    ("https://example.com/a#:~:text=hello", "example.com/a"),
    ("https://example.com/a#", "example.com/a"),
    ("https://example.com/#!/story/1", "example.com/#!/story/1"),
    ("https://example.com/app#/story/1", "example.com/app#/story/1"),
    ("http://scripting.com/2017/06/26.html#a080605", "scripting.com/2017/06/26.html#a080605"),
    ("https://example.com/post/#comment-12", "example.com/post/#comment-12"),
    # malformed schemes repaired
    ("http://http://www.al-monitor.com/pulse", "al-monitor.com/pulse"),  # MC
    ("http://HTTP://WWW.nytimes.COM/ARTICLE/12345/?ab=cd", "nytimes.com/ARTICLE/12345/?ab=cd"),
    ("http:/www.theinquirer.net/news/2322928/x", "theinquirer.net/news/2322928/x"),
    ("http:\\\\www.x.com\\a\\b", "x.com/a/b"),
    ("http:///www.x.com/a", "x.com/a"),
    ("https:www.x.com/a", "x.com/a"),
    ("http://https//x.com/a", "x.com/a"),
    (
        "https://gizmodo.com/a-1822763256?utm_campaign=x&#038;utm_source=y&#038;id=1",
        "gizmodo.com/a-1822763256?id=1",
    ),  # an ampersand escaped twice
    ("https://example.com/a?b=1&amp;c=2", "example.com/a?b=1&c=2"),
]

#: Variants of one article: every URL of a group has one key.
MERGE = [
    [
        "http://www.example.com/2024/05/rates-rise-again/",
        "https://example.com/2024/05/rates-rise-again/",
        "https://m.example.com/2024/05/rates-rise-again/",
        "https://amp.example.com/2024/05/rates-rise-again/",
        "https://www.example.com/2024/05/rates-rise-again/amp/",
        "https://www.example.com/2024/05/rates-rise-again/?amp=1",
        "https://www.example.com/2024/05/rates-rise-again/?outputType=amp",
        "https://www.example.com//2024/05//rates-rise-again/",
        "https://www.example.com/2024/05/rates-rise-again/?utm_source=rss&ITO=1490",
        "https://www.example.com/2024/05/rates-rise-again/?fbclid=IwAR0&gclid=x&mc_cid=1",
        "https://www.example.com/2024/05/rates-rise-again/#more-4410",
        "http://http://www.example.com/2024/05/rates-rise-again/",
        "http:/www.example.com/2024/05/rates-rise-again/",
        "http:\\\\www.example.com\\2024\\05\\rates-rise-again\\",
        "https://www-example-com.cdn.ampproject.org/c/s/www.example.com/2024/05/rates-rise-again/",
        "https://www.google.com/url?q=https://www.example.com/2024/05/rates-rise-again/&sa=D",
    ],
    [
        "https://www.example.com/news/",
        "https://www.example.com/news/index.html",
        "https://example.com/news/index.htm",
    ],
    [
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&si=abc",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=youtu.be",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
    ],
    [  # MC: one FeedBurner item, its feed name and token in two cases
        "http://feeds.reuters.com/~r/reuters/topnews/~3/nachplxyqso/u-s-probes-iduskcn1ty1a5",
        "http://feeds.reuters.com/~r/reuters/topNews/~3/NacHplXYqSo/u-s-probes-idUSKCN1TY1A5",
    ],
    ["https://example.com/?b=2&a=1", "https://example.com/?a=1&b=2"],
]

#: Two articles: never one key.
APART = [
    ("https://example.com/#!/story/1", "https://example.com/#!/story/2"),
    ("https://example.com/app#/story/1", "https://example.com/app#/story/2"),
    ("http://scripting.com/2017/06/26.html#a1", "http://scripting.com/2017/06/26.html#a2"),
    ("http://scripting.com/2017/06/26.html#a1", "http://scripting.com/2017/06/26.html"),
    ("https://example.com/category/amp/", "https://example.com/category/"),
    ("https://example.com/reviews/guitar/amp", "https://example.com/reviews/guitar/"),
    ("https://example.com/reviews/guitar/amp", "https://example.com/reviews/guitar"),
    ("https://example.com/amp/", "https://example.com/"),
    ("https://example.com/2024/amp", "https://example.com/2024"),
    ("https://example.com/list?x=1&x=2", "https://example.com/list?x=2&x=1"),
    ("https://example.com/ARTICLE/12345", "https://example.com/article/12345"),  # MC merges
    ("http://blog.yesmeck.com/jquery-jsonview/", "http://yesmeck.com/jquery-jsonview/"),  # MC
    ("http://beta.foo.com/bar", "http://foo.com/bar"),  # MC merges these
    ("https://www2.example.com/a", "https://www.example.com/a"),
    ("https://example.com/a", "https://example.com/a/"),
    ("https://example.com/a?amp=0", "https://example.com/a"),
    ("https://example.com/?p=1", "https://example.com/?p=2"),
    ("https://example.com/a?si=1", "https://example.com/a?si=2"),
    ("https://example.com/post/#comment-1", "https://example.com/post/#comment-2"),
    ("https://example.com:8080/a", "https://example.com/a"),
    ("https://www.youtube.com/watch?v=aaaaaaaaaa1", "https://www.youtube.com/watch?v=aaaaaaaaaa2"),
    ("https://github.com/o/r/blob/x?ref=main", "https://github.com/o/r/blob/x?ref=dev"),
]

#: The URL shown to readers: as published, less tracking, wrappers and user info.
SHOWN_CASES = [
    (
        "https://m.example.com/a?b=2&utm_source=x&a=1#comments",
        "https://m.example.com/a?b=2&a=1#comments",
    ),
    ("http://www.example.com/a/amp/?amp=1", "http://www.example.com/a/amp/?amp=1"),
    ("https://example.com/#!/story/1", "https://example.com/#!/story/1"),
    ("https://example.com/a#xtor=RSS-3", "https://example.com/a"),
    ("https://user:secret@example.com/a b", "https://example.com/a%20b"),
    ("http://http://www.al-monitor.com/pulse", "http://www.al-monitor.com/pulse"),
    ("http:\\\\www.x.com\\a", "http://www.x.com/a"),
    (
        "https://www.google.com/url?q=https://example.com/a%3Fid%3D7%26utm_source%3Dx",
        "https://example.com/a?id=7",
    ),
    ("https://youtu.be/dQw4w9WgXcQ?si=abc", "https://youtu.be/dQw4w9WgXcQ"),
    ("https://bücher.de/ü", "https://xn--bcher-kva.de/%C3%BC"),
]


@pytest.mark.parametrize(("url", "expected"), KEY_CASES)
def test_key_rule_table(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


@pytest.mark.parametrize("group", MERGE, ids=lambda group: group[0])
def test_variants_of_one_article_share_one_key(group: list[str]) -> None:
    keys = {url: canonicalize(url) for url in group}
    assert None not in keys.values()
    assert len(set(keys.values())) == 1, keys


@pytest.mark.parametrize(("first", "second"), APART)
def test_two_articles_never_share_a_key(first: str, second: str) -> None:
    assert canonicalize(first) is not None
    assert canonicalize(first) != canonicalize(second)


@pytest.mark.parametrize(("url", "expected"), SHOWN_CASES)
def test_shown_url_is_as_published_less_tracking(url: str, expected: str) -> None:
    assert clean_url(url) == expected


ALL_URLS = [row[0] for row in KEY_CASES + SHOWN_CASES] + [u for g in MERGE for u in g]


@pytest.mark.parametrize("url", ALL_URLS)
def test_the_shown_url_keeps_the_key_and_is_stable(url: str) -> None:
    shown = clean_url(url)
    assert shown is not None
    assert canonicalize(shown) == canonicalize(url)  # stored URLs can be keyed again
    assert clean_url(shown) == shown


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
        "https.example.com/a",
        "http://",
        "http:///",  # three slashes are repaired (as feedparser does), but no host is left
        "http://exa mple.com/",
        "http://a..b/",
        "http://[::1/",
        "http://example.com:99999/",
        "http://example.com:port/",
        "https://" + "a" * 64 + ".com/",  # IDNA label over 63 characters
        "https://example.com/" + "a" * 5000,
        "http://\ud800.com/",
        "\x00\x01\x02",
        "http://example.com/a\nb",
    ],
)
def test_non_http_or_garbage_urls_are_rejected_with_none(url: str) -> None:
    assert canonicalize(url) is None
    assert clean_url(url) is None


def test_canonicalize_never_raises_on_non_strings() -> None:
    assert canonicalize(None) is None  # type: ignore[arg-type]
    assert canonicalize(b"https://example.com/") is None  # type: ignore[arg-type]
    assert clean_url(None) is None  # type: ignore[arg-type]


def test_tracking_table_covers_the_documented_names() -> None:
    for name in ("fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid",
                 "_hsenc", "_hsmi", "ref_src", "cmpid", "ocid", "ito", "ns_campaign",
                 "ns_mchannel", "ncid"):  # fmt: skip
        assert name in TRACKING_PARAMS
    for prefix in ("utm_", "wt.", "wt_", "oly_"):
        assert prefix in TRACKING_PREFIXES


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://http://host.example/path", "http://host.example/path"),
        ("http://https://host.example/path", "https://host.example/path"),
        ("http:/www.x.com/a", "http://www.x.com/a"),
        ("http:\\\\www.x.com\\a?q=\\", "http://www.x.com/a?q=\\"),
        ("https:www.x.com/a", "https://www.x.com/a"),
        ("http:////www.x.com/a", "http://www.x.com/a"),
        ("https://example.com/a", "https://example.com/a"),
        ("https://httpbin.example/a", "https://httpbin.example/a"),
        ("/relative/a", "/relative/a"),
        ("https.example.com/a", "https.example.com/a"),
        ("mailto:a@example.com", "mailto:a@example.com"),
        ("https://example.com/a?b=1&#038;c=2&amp;d=3", "https://example.com/a?b=1&c=2&d=3"),
    ],
)
def test_repair_mends_broken_schemes_only(url: str, expected: str) -> None:
    assert repair_url(url) == expected


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
        # malformed links are repaired before the join, never joined onto the feed's host
        ("http:/www.x.com/a", "http://feed.example/rss", "http://www.x.com/a"),
        ("http:/www.x.com/a", "https://feed.example/rss", "http://www.x.com/a"),
        ("http:\\\\www.x.com\\a", "http://feed.example/rss", "http://www.x.com/a"),
        ("http://http://www.x.com/a", "http://feed.example/rss", "http://www.x.com/a"),
    ],
)
def test_resolve_http_url_resolves_against_the_base_and_keeps_only_http(
    link: str, base: str, expected: str | None
) -> None:
    assert resolve_http_url(link, base) == expected


@pytest.mark.parametrize(
    ("guid", "expected"),
    [
        ("tag:typepad.com,2003:post-61753462", "tag:typepad.com,2003:post-61753462"),
        (
            "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
            "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
        ),
        ("http://www.example.com/?p=123", "example.com/?p=123"),
        ("https://example.com/2024/05/a-post/", "example.com/2024/05/a-post/"),
        ("https://www.example.com/", None),  # a home page names no item
        ("http://example.com", None),
        ("12345", None),  # unique within one feed only
        ("yt:video:dQw4w9WgXcQ", None),
        ("  ", None),
        (None, None),
    ],
)
def test_only_ids_unique_across_feeds_have_a_guid_key(
    guid: str | None, expected: str | None
) -> None:
    assert guid_key(guid) == expected
