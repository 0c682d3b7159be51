"""The ElementTree fast path gives exactly what feedparser gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.feeds.fast_xml import read_plain_feed
from core.feeds.parse import parse_xml

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
BASE = "https://feeds.example.org/news/feed.xml"
XML = {"content-type": "application/xml"}
DECL = '<?xml version="1.0" encoding="utf-8"?>'
NS = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
    'xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0" '
    'xmlns:x="urn:example:unknown"'
)


def xml_fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.suffix not in (".tsv", ".md", ".json"))


def rss(items: str, channel: str = "<title>Wire</title><link>/home</link>", **attrs: str) -> bytes:
    extra = "".join(f' {key.replace("_", ":")}="{value}"' for key, value in attrs.items())
    return (
        f'{DECL}<rss version="2.0" {NS}{extra}><channel>{channel}{items}</channel></rss>'.encode()
    )


def atom(entries: str, head: str = "<title>Wire</title>", **attrs: str) -> bytes:
    extra = "".join(f' {key.replace("_", ":")}="{value}"' for key, value in attrs.items())
    return f'{DECL}<feed xmlns="http://www.w3.org/2005/Atom"{extra}>{head}{entries}</feed>'.encode()


def assert_same(body: bytes, headers: dict[str, str] | None = None) -> None:
    headers = headers or {}
    assert parse_xml(body, headers, BASE) == parse_xml(body, headers, BASE, fast_path=False)


@pytest.mark.parametrize("path", xml_fixtures(), ids=lambda p: p.name)
@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/rss+xml"}], ids=["", "ct"])
def test_every_corpus_feed_comes_out_as_feedparser_reads_it(
    path: Path, headers: dict[str, str]
) -> None:
    try:
        assert_same(path.read_bytes(), headers)
    except Exception as exc:  # "not a feed" must then be the same on both paths
        with pytest.raises(type(exc)):
            parse_xml(path.read_bytes(), headers, BASE, fast_path=False)


def test_the_fast_path_takes_most_of_the_corpus() -> None:
    """Guards the speed: a change that quietly declines everything fails here."""
    sizes = {p: len(p.read_bytes()) for p in xml_fixtures()}
    taken = [p for p in sizes if read_plain_feed(p.read_bytes().lstrip(), XML, BASE)]
    assert len(taken) >= 0.7 * len(sizes)
    assert sum(sizes[p] for p in taken) >= 0.75 * sum(sizes.values())


TAKEN = {
    "xml-base-and-relative-links": rss(
        '<item xml:base="/section/"><title>A</title><link>a.html</link>'
        "<guid>b.html</guid></item><item><title>B</title><guid>/c</guid></item>",
        xml_base="https://other.example/root/",
    ),
    "atom-xml-base-lang-and-links": atom(
        '<entry xml:base="sub/" xml:lang="de_AT"><title type="html">&lt;b&gt;Titel&lt;/b&gt;'
        '</title><link rel="alternate" href="post"/><link rel="canonical" href="/canon"/>'
        '<link rel="self" href="self.xml"/><id>tag:x,2024:1</id>'
        "<updated>2024-03-01T10:00:00+02:00</updated></entry>",
        xml_base="https://atom.example/blog/",
        xml_lang="de",
    ),
    "link-rel-and-type-in-any-case": atom(
        '<entry><title>A</title><link rel="Alternate" type="HTML" href="https://a.example/k"/>'
        '<link rel="CANONICAL" href="https://a.example/canon"/><id>urn:x:1</id></entry>'
        '<entry><title>B</title><link rel="self" type="xhtml" href="https://a.example/s"/>'
        '<link type="xhtml" href="https://a.example/x"/></entry>'
    ),
    "first-non-empty-title-wins": rss(
        "<item><title></title><title>Second</title><dc:title>Third</dc:title>"
        "<link>https://a.example/1</link></item>"
    ),
    "feed-title-after-items": rss(
        "<item><title>I</title><link>https://a.example/1</link></item><title>Late</title>",
        channel="<title>Early</title>",
    ),
    "description-then-content": rss(
        "<item><title>A</title><link>https://a.example/1</link><description>lead</description>"
        "<content:encoded>&lt;p&gt;body&lt;/p&gt;</content:encoded></item>"
    ),
    "content-then-description": rss(
        "<item><title>A</title><link>https://a.example/2</link>"
        "<content:encoded>body</content:encoded><description>lead</description></item>"
    ),
    "empty-description-falls-back-to-content": rss(
        "<item><title>A</title><link>https://a.example/3</link><description></description>"
        "<content:encoded>body</content:encoded></item>"
    ),
    "second-summary-is-content": rss(
        "<item><title>A</title><link>https://a.example/4</link><description>one</description>"
        "<itunes:summary>two</itunes:summary><itunes:author>Pod Cast</itunes:author></item>"
    ),
    "atom-summary-content-and-authors": atom(
        '<entry><title>A</title><link href="https://a.example/5"/><content type="html">'
        "&lt;p&gt;full&lt;/p&gt;</content><summary>short</summary><author><name>Ann</name>"
        "<email>ann@example.org</email><uri>https://ann.example</uri></author></entry>"
        '<entry><title>B</title><link href="https://a.example/6"/><author><email>b@example.org'
        "</email></author><content>only content</content></entry>"
    ),
    "guid-not-permalink-and-permalink": rss(
        '<item><title>A</title><guid isPermaLink="false">/x/1</guid></item>'
        '<item><title>B</title><guid isPermaLink="true">/x/2</guid></item>'
    ),
    "escaped-ampersands-in-links": rss(
        "<item><title>A</title><link>https://a.example/?a=1&amp;amp;b=2&amp;c;</link></item>"
    ),
    "dates-in-every-form": rss(
        "<item><title>A</title><link>https://a.example/7</link>"
        "<pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate></item>"
        "<item><title>B</title><link>https://a.example/8</link>"
        "<dc:date>2024-02-29T23:30:00-05:00</dc:date></item>"
        "<item><title>C</title><link>https://a.example/9</link><pubDate>soon</pubDate></item>"
    ),
    "utf8-read-as-latin1-and-c1-controls": rss(
        "<item><title>CafÃ© &#147;quoted&#148;</title><link>https://a.example/10</link>"
        "<dc:creator>JosÃ©</dc:creator></item>"
    ),
    "origlink-categories-media-and-unknown-extensions": rss(
        "<item><title>A</title><link>https://feedproxy.example/~r/x/1</link>"
        "<feedburner:origLink>https://a.example/11?utm_source=rss</feedburner:origLink>"
        '<category>News</category><media:content url="https://img.example/1.jpg">'
        '<media:thumbnail url="https://img.example/t.jpg"/></media:content>'
        '<x:score value="3"/><x:note>n</x:note></item>',
        channel='<title>W</title><atom:link rel="self" href="https://w.example/feed"/>'
        "<image><title>Logo</title><url>https://w.example/l.png</url></image>",
    ),
    "news-search-items-with-a-source": rss(
        "<item><title>Rates rise - Wire</title><link>https://news.example/rss/articles/CBMi?oc=5"
        '</link><guid isPermaLink="false">CBMi</guid><source url="https://wire.example">Wire'
        "</source><title>After the source</title><description>&lt;ol&gt;&lt;li&gt;lead"
        "&lt;/li&gt;&lt;/ol&gt;</description></item>"
    ),
    "rdf-items-with-about": (
        f'{DECL}<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://r.example/"><title>R</title><link>https://r.example/'
        "</link><items><rdf:Seq><rdf:li/></rdf:Seq></items></channel>"
        '<item rdf:about="https://r.example/1"><title>One</title><link>https://r.example/1'
        "</link><dc:date>2024-01-01</dc:date></item></rdf:RDF>"
    ).encode(),
    "leading-whitespace-before-the-declaration": b"\n\n  " + rss("<item><title>A</title></item>"),
}


@pytest.mark.parametrize("body", TAKEN.values(), ids=TAKEN.keys())
def test_shapes_the_fast_path_takes_come_out_as_feedparser_reads_them(body: bytes) -> None:
    assert read_plain_feed(body.lstrip(), XML, BASE) is not None
    assert_same(body)
    assert_same(body, {"Content-Type": "application/rss+xml; charset=utf-8"})


def test_a_charset_in_the_header_wins_over_the_declaration() -> None:
    body = rss("<item><title>Привет</title><link>https://ru.example/1</link></item>")
    body = body.decode().replace("utf-8", "iso-8859-1").encode("windows-1251")
    headers = {"content-type": "application/rss+xml; charset=windows-1251"}
    assert read_plain_feed(body, headers, BASE) is not None
    assert parse_xml(body, headers, BASE).entries[0].title == "Привет"
    assert_same(body, headers)


DECLINED = {
    "doctype": b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd">'
    + rss("<item><title>A</title></item>")[len(DECL) :],
    "not-well-formed": rss("<item><title>A &nbsp; B</title></item>"),
    "xhtml-content": atom(
        '<entry><title>A</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        "<p>x</p></div></content></entry>"
    ),
    "markup-inside-a-text-element": rss("<item><title>A <b>bold</b></title></item>"),
    "media-title-in-item": rss("<item><media:title>M</media:title><title>A</title></item>"),
    "cdf-attributes-on-item": rss('<item href="https://a.example/"><title>A</title></item>'),
    "unknown-default-namespace": b'<rss xmlns="urn:example:other"><channel/></rss>',
    "atom-0.3": b'<feed xmlns="http://purl.org/atom/ns#"><title>Old</title></feed>',
    "origlink-with-attributes": rss(
        '<item><feedburner:origLink x="1">https://a.example/</feedburner:origLink></item>'
    ),
    "upper-case-attribute-names": atom('<entry><title TYPE="xhtml">A</title></entry>'),
    "image-inside-an-item": rss("<item><title>A</title><image><title>I</title></image></item>"),
    "utf-16": rss("<item/>")
    .decode()
    .replace('encoding="utf-8"', 'encoding="utf-16"')
    .encode("utf-16"),
    "undecodable-bytes": rss("<item><title>café</title></item>").decode().encode("latin-1"),
}


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_anything_else_goes_to_feedparser(body: bytes) -> None:
    assert read_plain_feed(body, XML, BASE) is None
    assert_same(body)


@pytest.mark.parametrize(
    "content_type", ["text/xml", "text/html; charset=utf-8", "application/octet-stream"]
)
def test_content_types_feedparser_complains_about_go_to_feedparser(content_type: str) -> None:
    body = rss("<item><title>Café</title></item>")  # text/xml means US-ASCII to feedparser
    assert read_plain_feed(body, {"content-type": content_type}, BASE) is None
    assert parse_xml(body, {"Content-Type": content_type}, BASE).bozo_reason is not None


def test_entries_past_the_cap_are_counted_not_read() -> None:
    items = [
        f"<item><title>n{i}</title><link>https://e.example/{i}</link></item>" for i in range(2000)
    ]
    items[1500] = "<item><media:title>read by feedparser only</media:title></item>"
    body = rss("".join(items))
    plain = read_plain_feed(body, XML, BASE, limit=500)
    assert plain is not None and len(plain.entries) == 500 and plain.total == 2000
    assert_same(body)
