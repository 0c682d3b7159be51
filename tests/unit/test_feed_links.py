"""Entry links through both parse paths: repaired before the join, keyed per URL alone,
attributed to the article's own site."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.feeds import parse_feed
from core.feeds.parse import parse_xml

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
HTTP_FEED = "http://feed.example/news/rss.xml"
FEEDBURNER_HOSTS = ("feedproxy.google.com", "feeds.feedburner.com")
PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "feedparser"])


def rss(*links: str) -> bytes:
    items = "".join(
        f"<item><title>Post {n}</title><link>{link}</link></item>" for n, link in enumerate(links)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"{items}</channel></rss>"
    ).encode()


@PATHS
@pytest.mark.parametrize(
    "link",
    [
        "http:/www.x.example/2024/story-one",
        "http:\\\\www.x.example\\2024\\story-one",
        "http://http://www.x.example/2024/story-one",
        "http:www.x.example/2024/story-one",
    ],
)
def test_malformed_links_are_repaired_not_joined_onto_the_feed_host(
    link: str, fast_path: bool
) -> None:
    [entry] = parse_xml(rss(link), {}, HTTP_FEED, fast_path=fast_path).entries
    assert entry.url == "http://www.x.example/2024/story-one"
    assert entry.canonical_url == "http://www.x.example/2024/story-one"
    assert entry.url_key == "x.example/2024/story-one"


@PATHS
def test_relative_links_and_xml_base_still_resolve_against_the_feed(fast_path: bool) -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0" xml:base="/blog/"><channel><title>T</title>'
        b"<item><title>A</title><link>2024/a-post</link></item>"
        b"<item><title>B</title><link>/top</link></item></channel></rss>"
    )
    feed = parse_xml(body, {}, HTTP_FEED, fast_path=fast_path)
    assert [e.url for e in feed.entries] == [
        "http://feed.example/blog/2024/a-post",
        "http://feed.example/top",
    ]


def test_a_content_location_header_is_the_base() -> None:
    headers = {"Content-Location": "/mirror/rss.xml"}
    [entry] = parse_feed(rss("a-post"), headers, HTTP_FEED).entries
    assert entry.url == "http://feed.example/mirror/a-post"


def test_a_post_anchor_keeps_its_key_whatever_else_the_document_holds() -> None:
    page = "http://scripting.example/2017/06/26.html"
    alone = parse_feed(rss(f"{page}#a1"), {}, HTTP_FEED).entries
    later = parse_feed(rss(f"{page}#a2", f"{page}#a1"), {}, HTTP_FEED).entries
    assert alone[0].url_key == later[1].url_key == "scripting.example/2017/06/26.html#a1"
    assert later[0].url_key != later[1].url_key


@PATHS
@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("feedjira-FeedBurnerXHTML.xml", "www.rotoauthority.com"),
        ("feedjira-PaulDixExplainsNothing.xml", "www.pauldix.net"),
        ("feedjira-CRE.xml", "cre.fm"),
        ("feedjira-GiantRobotsSmashingIntoOtherGiantRobots.xml", "robots.thoughtbot.com"),
    ],
)
def test_feedburner_items_are_shown_and_keyed_by_their_orig_link(
    name: str, host: str, fast_path: bool
) -> None:
    feed = parse_xml((FIXTURES / name).read_bytes(), {}, HTTP_FEED, fast_path=fast_path)
    assert feed.entries
    for entry in feed.entries:
        assert urlsplit(entry.url or "").hostname in FEEDBURNER_HOSTS
        assert urlsplit(entry.canonical_url or "").hostname == host
        assert entry.url_key and entry.url_key.startswith(host.removeprefix("www."))
        assert "utm_" not in (entry.canonical_url or "")


@PATHS
def test_an_empty_link_never_makes_the_feed_itself_every_entry_s_link(fast_path: bool) -> None:
    body = (FIXTURES / "rsparser-ranchero-OneFootTsunami.atom").read_bytes()
    entries = parse_xml(
        body, {}, "http://onefoottsunami.com/feed/atom/", fast_path=fast_path
    ).entries
    keys = [entry.url_key for entry in entries]
    assert len(set(keys)) == len(keys) == len(entries)
    falcons = next(entry for entry in entries if "Chicago Falcons" in entry.title)
    assert falcons.url == "http://onefoottsunami.com/?p=14803"  # its id, not wp-atom.php


@PATHS
def test_a_link_to_the_feed_document_falls_back_to_an_http_id(fast_path: bool) -> None:
    items = "".join(
        f"<item><title>T{n}</title><link>{HTTP_FEED}</link><guid>http://feed.example/?p={n}</guid>"
        "</item>"
        for n in (1, 2)
    )
    body = f'<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()
    entries = parse_xml(body, {}, HTTP_FEED, fast_path=fast_path).entries
    assert [entry.url for entry in entries] == [
        "http://feed.example/?p=1",
        "http://feed.example/?p=2",
    ]
