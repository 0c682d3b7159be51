"""parse_feed(): real corpus feeds, encodings, limits, hostile XML, "not a feed"."""

from __future__ import annotations

import csv
import io
import json
import pyexpat
import resource
import socket
import threading
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

import core.feeds
from core.errors import NewsmonError
from core.feeds import (
    MAX_ENTRIES_PER_FEED,
    MAX_SNIPPET_CHARS,
    FeedParseError,
    ParsedEntry,
    ParsedFeed,
    html_to_text,
    parse_feed,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"
SHARED_CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus" / "feeds"
#: MANIFEST kind -> ParsedFeed.kind ("malformed" documents may come out as any kind).
KIND_OF = {"rss2": "rss", "atom": "atom", "rdf": "rdf", "json": "json"}
BASE = "https://feeds.example.org/feed"
RSS_XML = {"content-type": "application/rss+xml"}


def manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse_fixture(name: str) -> ParsedFeed:
    return parse_feed(fixture(name), {}, BASE)


def rss(items: str, head: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return f'{head}<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


def all_text(feed: ParsedFeed) -> str:
    parts = [feed.title, feed.link or "", feed.bozo_reason or ""]
    for entry in feed.entries:
        parts += [str(value) for value in vars_of(entry)]
    return "\n".join(parts)


def vars_of(entry: ParsedEntry) -> list[object]:
    return [getattr(entry, name) for name in entry.__slots__]


def expected_count(body: bytes, kind: str) -> int:
    """What the document itself holds: feedparser's count, or the JSON items."""
    if kind == "json":
        doc = json.loads(body)
        items = doc["items"] if "items" in doc else doc["rss"]["channel"]["item"]
        return min(len(items), MAX_ENTRIES_PER_FEED)
    return min(len(feedparser.parse(io.BytesIO(body)).entries), MAX_ENTRIES_PER_FEED)


def check_document(folder: Path, row: dict[str, str]) -> None:
    """Parses with the right kind and count and clean text, or fails as "not a feed"."""
    body = (folder / row["file"]).read_bytes()
    try:
        feed = parse_feed(body, {}, BASE)
    except FeedParseError as exc:
        assert row["kind"] == "malformed", f"{row['file']}: {exc}"
        assert str(exc).startswith("not a feed: ")
        return
    if row["kind"] != "malformed":
        assert feed.kind == KIND_OF[row["kind"]]
    assert len(feed.entries) == expected_count(body, feed.kind)
    for entry in feed.entries:
        for value in vars_of(entry):
            if isinstance(value, str):
                value.encode("utf-8")  # valid Unicode: no lone surrogates
                assert "\x00" not in value
        assert len(entry.summary) <= MAX_SNIPPET_CHARS
        assert "<script" not in entry.summary.lower()
        assert entry.published is None or entry.published.utcoffset() == UTC.utcoffset(None)
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        assert entry.canonical_url is None or entry.canonical_url.startswith("http")


def test_public_api_is_exactly_what_init_exports() -> None:
    # Submodules appear as attributes once anything imports them: not part of the API.
    assert sorted(core.feeds.__all__) == sorted(
        name
        for name, value in vars(core.feeds).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        (None, ""),
        ("plain", "plain"),
        ("AT&amp;T &amp; co", "AT&T & co"),
        ("1 &lt; 2 and 3 > 2", "1 < 2 and 3 > 2"),
        ("<p>a</p>\n\n<p>b&nbsp;c</p>", "a b c"),  # nbsp is whitespace too
        ("<b>x</b><script>alert(1)</script><style>b{}</style>y", "xy"),
        ("<img src=x onerror=alert(1)>z", "z"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;w", "w"),
        ("a\x00b\x07c", "a b c"),
        ("lone \ud800 surrogate", "lone \ufffd\ufffd\ufffd surrogate"),
    ],
)
def test_html_to_text(fragment: str | None, text: str) -> None:
    assert html_to_text(fragment) == text


def test_html_to_text_cuts_at_a_word_boundary() -> None:
    assert html_to_text("alpha beta gamma delta", 15) == "alpha beta…"


# --- every fixture, every corpus file ---------------------------------------------------


@pytest.mark.parametrize("row", manifest(FIXTURES), ids=lambda row: row["file"])
def test_every_fixture_parses_or_fails_with_a_clear_error(row: dict[str, str]) -> None:
    check_document(FIXTURES, row)


def test_fixtures_are_only_permissively_licensed_corpus_copies() -> None:
    rows = manifest(FIXTURES)
    assert {row["license_of_repo"] for row in rows} <= {"MIT", "Apache-2.0"}
    listed = {row["file"] for row in rows}
    on_disk = {path.name for path in FIXTURES.iterdir()} - {"MANIFEST.tsv"}
    assert listed == on_disk


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared corpus not present")
def test_every_shared_corpus_file_parses_or_fails_with_a_clear_error() -> None:
    for row in manifest(SHARED_CORPUS):  # includes the GPL files, read in place
        check_document(SHARED_CORPUS, row)


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared corpus not present")
def test_snapshots_of_one_feed_share_their_canonical_url() -> None:
    first, later = (
        parse_feed((SHARED_CORPUS / f"rss2email-nodejs-feed{n}.xml").read_bytes(), {}, BASE)
        for n in (1, 2)
    )
    assert first.entries[0].canonical_url == later.entries[0].canonical_url
    assert first.entries[0].content_hash != later.entries[0].content_hash  # item was edited


# --- formats and fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rsparser-ranchero-DaringFireball.rss", "atom"),  # .rss holding Atom
        ("rsparser-ranchero-allthis.atom", "rss"),  # .atom holding RSS 2.0
        ("rsparser-ranchero-bio.rdf", "rdf"),
        ("rssparser-prof18-rdf-feed-test.xml", "rdf"),
        ("rsparser-ranchero-DaringFireball.json", "json"),
        ("rsparser-ranchero-ScriptingNews.json", "json"),  # RSS-in-JSON
        ("rsparser-ranchero-donthitsave.xml", "rss"),  # UTF-8 BOM
        ("rsparser-ranchero-KatieFloyd.rss", "rss"),  # leading whitespace, stylesheet PI
    ],
)
def test_kind_is_detected_from_content_not_file_name(name: str, kind: str) -> None:
    assert parse_fixture(name).kind == kind


def test_json_feed_entries_have_the_same_shape() -> None:
    feed = parse_fixture("rsparser-ranchero-3960.json")
    entry = feed.entries[0]
    assert feed.title == "fboës - Der Blog | Startseite"
    assert entry.url == "https://journal.3960.org/posts/2020-02-21-lecker-lecker/"
    assert entry.title == "Lecker, lecker"
    assert entry.author == "Frank Boës"
    assert entry.language == "de-DE"
    assert entry.published is not None and entry.published.tzinfo is UTC


def test_relative_entry_links_resolve_against_the_feed_url() -> None:
    feed = parse_feed(
        fixture("rssparser-prof18-atom-relative-url.xml"), {}, "https://a.example/feed.xml"
    )
    assert feed.entries[0].url == "https://a.example/2024/12/18/What-The-Distribution.html"
    assert feed.link == "https://a.example/"


def test_relative_links_without_a_base_url_are_dropped_not_guessed() -> None:
    feed = parse_feed(fixture("rssparser-prof18-atom-relative-url.xml"), {}, None)
    assert feed.entries[0].url is None


def test_feedburner_orig_link_is_preferred_for_the_canonical_url() -> None:
    entry = parse_fixture("feedjira-PaulDixExplainsNothing.xml").entries[0]
    assert entry.url is not None and entry.url.startswith("http://feeds.feedburner.com/~r/")
    assert entry.canonical_url == (
        "http://www.pauldix.net/2009/01/making-a-ruby-c-library-even-faster.html"
    )


def test_rel_canonical_link_is_preferred_for_the_canonical_url() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>x</title>'
        b'<link rel="alternate" href="https://m.example.com/a?utm_source=feed"/>'
        b'<link rel="canonical" href="https://www.example.com/a"/><id>1</id></entry></feed>'
    )
    entry = parse_feed(body, {}, BASE).entries[0]
    assert entry.url == "https://m.example.com/a?utm_source=feed"
    assert entry.canonical_url == "https://www.example.com/a"


def test_redirect_wrappers_in_real_feeds_are_unwrapped() -> None:
    alerts = parse_fixture("feedjira-google_alerts_atom.xml").entries
    assert all(e.canonical_url and "google.com" not in e.canonical_url for e in alerts)
    bing = parse_fixture("rssparser-prof18-feed-bing-image.xml").entries[0]
    assert bing.canonical_url is not None
    assert bing.canonical_url.startswith("https://www.dailymail.co.uk/sport/football/")
    news = parse_fixture("rssparser-prof18-feed-test-source.xml").entries[0]
    assert news.canonical_url is not None and news.canonical_url.startswith("https://www.rtbf.be/")


def test_tracking_parameters_are_gone_from_canonical_urls() -> None:
    for name in ("rsparser-ranchero-cloudblog.rss", "rsparser-ranchero-3960.json",
                 "feedjira-FeedBurnerXHTML.xml", "rsparser-ranchero-pxlnv.json"):  # fmt: skip
        for entry in parse_fixture(name).entries:
            assert entry.canonical_url is None or "utm_" not in entry.canonical_url


def test_cdata_and_entities_come_out_as_plain_text() -> None:
    emarley = parse_fixture("rsparser-ranchero-EMarley.rss").entries[0]
    assert emarley.title == "UI Automation & screenshots"
    assert "<" not in emarley.summary
    escaped = parse_fixture("rssparser-prof18-feed-char-escape.xml").entries[0]
    assert "&gt;" not in escaped.title and "&amp;" not in escaped.summary


def test_published_is_normalised_to_utc_and_missing_dates_are_none() -> None:
    items = (
        "<item><title>a</title><link>https://e.org/a</link>"
        "<pubDate>Mon, 01 Jan 2024 12:00:00 +0200</pubDate></item>"
        "<item><title>b</title><link>https://e.org/b</link></item>"
        "<item><title>c</title><link>https://e.org/c</link><pubDate>yesterday-ish</pubDate></item>"
        "<item><title>d</title><link>https://e.org/d</link>"
        "<pubDate>Mon, 31 Feb 2024 99:99:99 GMT</pubDate></item>"
    )
    entries = parse_feed(rss(items), RSS_XML, BASE).entries
    assert entries[0].published == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert [e.published for e in entries[1:]] == [None, None, None]


def test_invalid_date_fixture_does_not_crash() -> None:
    feed = parse_fixture("feedjira-InvalidDateFormat.xml")
    assert len(feed.entries) == 2 and feed.bozo_reason is not None


def test_summary_is_stripped_collapsed_and_capped() -> None:
    long_text = "<p>word  \n\t" + "lorem ipsum " * 400 + "</p>"
    entry = parse_feed(
        rss(
            f"<item><title>  a\n b </title>"
            f"<description><![CDATA[{long_text}]]></description></item>"
        ),
        RSS_XML,
        BASE,
    ).entries[0]
    assert entry.title == "a b"
    assert entry.summary.startswith("word lorem ipsum")
    assert len(entry.summary) <= MAX_SNIPPET_CHARS and entry.summary.endswith("…")


def test_summary_falls_back_to_content() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>x</title>'
        b'<content type="html">&lt;b&gt;body&lt;/b&gt; text</content><id>1</id></entry></feed>'
    )
    assert parse_feed(body, {}, BASE).entries[0].summary == "body text"


def test_script_onerror_and_javascript_never_reach_text_or_links() -> None:
    payload = (
        "<p>Hello <script>alert('s')</script><img src=x onerror=\"alert('e')\">"
        "<a href=\"javascript:alert('j')\">link</a> javascript:alert('t')"
        '<iframe src="https://evil.example/">frame</iframe><style>p{}</style></p>'
    )
    items = (
        f"<item><title>&lt;script&gt;alert('t')&lt;/script&gt;Title</title>"
        f"<link>javascript:alert('l')</link><description><![CDATA[{payload}]]></description></item>"
        f"<item><title>double</title><link>https://e.org/x</link>"
        f"<description>&amp;lt;script&amp;gt;alert('d')&amp;lt;/script&amp;gt;ok</description></item>"
    )
    feed = parse_feed(rss(items), RSS_XML, BASE)
    first, second = feed.entries
    assert first.title == "Title"
    assert first.summary == "Hello link alert('t')"  # bare text stays text, scheme removed
    assert first.url is None and first.canonical_url is None
    assert second.summary == "ok"
    text = all_text(feed).lower()
    for needle in ("script", "onerror", "iframe", "alert('s')", "alert('e')", "alert('j')"):
        assert needle not in text


@pytest.mark.slow  # feedparser still reads all 20,000 items (about 2 s)
def test_only_the_first_max_entries_are_kept() -> None:
    items = "".join(
        f"<item><title>n{i}</title><link>https://e.org/{i}</link></item>" for i in range(20_000)
    )
    feed = parse_feed(rss(items), RSS_XML, BASE)
    assert len(feed.entries) == MAX_ENTRIES_PER_FEED
    assert feed.entries[0].title == "n0"
    assert feed.entries[-1].title == f"n{MAX_ENTRIES_PER_FEED - 1}"
    assert feed.entries_dropped == 20_000 - MAX_ENTRIES_PER_FEED


def test_json_feed_is_capped_too() -> None:
    items = [{"id": str(i), "url": f"https://e.org/{i}", "title": f"n{i}"} for i in range(600)]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    feed = parse_feed(body, {}, BASE)
    assert len(feed.entries) == MAX_ENTRIES_PER_FEED and feed.entries_dropped == 100


def test_json_feed_with_wrong_field_types_does_not_crash() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": ["not", "a", "string"],
            "items": [
                "not an object",
                {"id": {"x": 1}, "url": 42, "title": None, "date_published": "garbage",
                 "authors": "nobody", "summary": 3.5},
                {"id": 7, "url": "/rel", "date_published": "2024-01-01T12:00:00+02:00"},
            ],
        }
    ).encode()  # fmt: skip
    feed = parse_feed(body, {}, "https://e.org/feed.json")
    assert feed.title == ""
    assert [e.guid for e in feed.entries] == [None, "7"]
    assert feed.entries[1].url == "https://e.org/rel"
    assert feed.entries[1].published == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def test_content_hash_follows_title_and_summary() -> None:
    def hash_of(description: str) -> str:
        item = f"<item><title>t</title><description>{description}</description></item>"
        return parse_feed(rss(item), RSS_XML, BASE).entries[0].content_hash

    assert hash_of("one") == hash_of("<b>one</b>")  # same text shown
    assert hash_of("one") != hash_of("two")


# --- encodings --------------------------------------------------------------------------


def test_koi8r_feed_decodes_to_russian() -> None:
    entry = parse_fixture("miniflux-encoding-koi8r.xml").entries[0]
    assert entry.title == "Первая новость"


def test_iso_8859_1_feed_decodes_umlauts() -> None:
    feed = parse_fixture("miniflux-parser-encoding_ISO-8859-1.xml")
    assert any("ü" in e.summary or "ä" in e.summary for e in feed.entries)


def test_windows_1251_feed_decodes_with_declaration_or_header() -> None:
    item = "<item><title>Новости дня</title><link>https://e.org/1</link></item>"
    declared = rss(item, '<?xml version="1.0" encoding="windows-1251"?>').decode()
    body = declared.encode("cp1251")
    assert parse_feed(body, {}, BASE).entries[0].title == "Новости дня"
    undeclared = rss(item, '<?xml version="1.0"?>').decode().encode("cp1251")
    by_header = parse_feed(
        undeclared, {"Content-Type": "application/xml; charset=windows-1251"}, BASE
    )
    assert by_header.entries[0].title == "Новости дня"


def test_bytes_that_contradict_the_declared_charset_give_valid_unicode_and_a_bozo() -> None:
    item = "<item><title>Ceci est un café</title><link>https://e.org/1</link></item>"
    body = rss(item).decode().encode("latin-1")  # declared utf-8, bytes latin-1
    feed = parse_feed(body, RSS_XML, BASE)
    assert feed.bozo_reason is not None
    assert len(feed.entries) == 1
    feed.entries[0].title.encode("utf-8")


def test_invalid_utf8_and_unknown_encoding_still_give_valid_unicode() -> None:
    broken = rss("<item><title>ok MARK bad</title></item>").replace(b"MARK", b"\xff\xfe\xc3")
    unknown = rss("<item><title>t</title></item>", '<?xml version="1.0" encoding="x-no-such"?>')
    for body in (broken, unknown):
        feed = parse_feed(body, {"Content-Type": "application/xml"}, BASE)
        assert feed.bozo_reason is not None
        for entry in feed.entries:
            entry.title.encode("utf-8")


def test_long_leading_whitespace_is_still_a_feed() -> None:
    body = b"\xef\xbb\xbf" + b" \n" * 3000 + rss("<item><title>t</title></item>", "")
    assert len(parse_feed(body, RSS_XML, BASE).entries) == 1


def test_missing_content_type_is_not_reported_as_a_problem() -> None:
    feed = parse_fixture("miniflux-parser-large_rss.xml")
    assert feed.bozo_reason is None


# --- not a feed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b" \r\n\t ", "empty body"),
        (b" " * 5000, "empty body"),
        (b"<!DOCTYPE html><html><head><title>Hi</title></head><body>x</body></html>", "HTML"),
        (b"<html><body><a href='/feed'>feed</a></body></html>", "HTML"),
        (b"/etc/passwd", "no RSS"),
        (b"plain text body", "no RSS"),
        (b"[1, 2, 3]", "no RSS"),
        (b'{"items": ', "invalid JSON"),
        (b'{"hello": "world"}', "neither JSON Feed"),
        (b"[" * 100_000 + b"]" * 100_000, "no RSS"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    ],
)
def test_non_feeds_raise_feed_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(FeedParseError, match=f"^not a feed: .*{reason}") as info:
        parse_feed(body, {"Content-Type": "text/html"}, BASE)
    assert isinstance(info.value, NewsmonError)


def test_a_body_that_is_a_local_path_is_content_not_a_file_to_read() -> None:
    with pytest.raises(FeedParseError) as info:
        parse_feed(b"/etc/passwd", {}, BASE)
    assert "root:" not in str(info.value)


# --- hostile XML (RELIABILITY rows 15-18) -----------------------------------------------

LOL_DECLS = ['<!ENTITY lol "lol">'] + [
    f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, 10)
]
LOL_BODY = (
    '<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title>'
    "<description>&lol9;</description><link>https://e.org/a</link></item></channel></rss>"
)
BILLION_LAUGHS_MULTI_LINE = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(LOL_DECLS) + "\n]>\n" + LOL_BODY
).encode()
BILLION_LAUGHS_ONE_LINE = BILLION_LAUGHS_MULTI_LINE.replace(b"\n", b"")
QUADRATIC_BLOWUP = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + "x" * 50_000 + '">]>'
    '<rss version="2.0"><channel><title>t</title><item><title>' + "&a;" * 50_000 + "</title>"
    "</item></channel></rss>"
).encode()


def test_expat_has_billion_laughs_protection() -> None:
    assert pyexpat.version_info >= (2, 4, 0)


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS_MULTI_LINE, BILLION_LAUGHS_ONE_LINE, QUADRATIC_BLOWUP],
    ids=["multi-line", "one-line", "quadratic"],
)
def test_entity_bombs_are_not_expanded(body: bytes) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.process_time()
    feed = parse_feed(body, RSS_XML, BASE)
    # CPU, not wall time, so a loaded machine does not fail it: an expanded bomb takes
    # minutes of CPU, a refused one milliseconds.
    cpu_s = time.process_time() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert cpu_s < 5.0
    assert grown_mib < 50
    assert feed.bozo_reason is not None
    assert "lollol" not in all_text(feed) and "xxxxx" not in all_text(feed)


def test_xxe_file_entity_is_not_read() -> None:
    secret = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>'
        b'<rss version="2.0"><channel><title>a&xxe;b</title><item><title>i&xxe;j</title>'
        b"<description>d&xxe;e</description><link>https://e.org/&xxe;</link></item>"
        b"</channel></rss>"
    )
    feed = parse_feed(body, RSS_XML, BASE)
    text = all_text(feed)
    assert feed.entries[0].title == "i&xxe;j"  # left as an unexpanded reference
    if secret:
        assert secret not in text


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts connections (and answers nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    yield counter
    counter.close()


def test_external_dtd_and_parameter_entities_make_no_request(listener: ConnectionCounter) -> None:
    url = f"http://127.0.0.1:{listener.port}"
    bodies = [
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{url}/rss.dtd">'
        '<rss version="2.0"><channel><title>t</title><item><title>a&nbsp;b</title></item>'
        "</channel></rss>",
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % remote SYSTEM "{url}/p.dtd">%remote;]>'
        '<rss version="2.0"><channel><title>t</title><item><title>x</title></item></channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY ext SYSTEM "{url}/e.txt">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>&ext;</title></item>'
        "</channel></rss>",
        f'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//x//y" "{url}/pub.dtd" [\n'
        f'<!ENTITY % r SYSTEM "{url}/r.dtd">\n%r;\n]>\n'
        '<rss version="2.0"><channel><title>t</title><item><title>x</title></item></channel></rss>',
    ]
    for body in bodies:
        feed = parse_feed(body.encode(), RSS_XML, BASE)
        assert len(feed.entries) == 1
    time.sleep(0.3)  # a late connect attempt would still be counted
    assert listener.connections == 0


# --- dedupe across formats and snapshots ------------------------------------------------


def canonical_urls(name: str) -> set[str | None]:
    return {entry.canonical_url for entry in parse_fixture(name).entries}


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        # Same site, Atom vs JSON Feed: JSON's external_url matches Atom's alternate link.
        ("rsparser-ranchero-DaringFireball.atom", "rsparser-ranchero-DaringFireball.json", 47),
        ("miniflux-parser-large_atom.xml", "miniflux-parser-large_rss.xml", 25),
        ("rsparser-ranchero-allthis.atom", "rsparser-ranchero-allthis.json", 12),
        ("rsparser-ranchero-inessential.json", "feedjira-json_feed.json", 20),
        # One-page-many-posts site: fragments kept because they tell entries apart.
        ("rsparser-ranchero-scriptingNews.rss", "rsparser-ranchero-ScriptingNews.json", 48),
        # Different snapshots (2016 vs 2017) of Daring Fireball: nothing in common.
        ("rsparser-ranchero-DaringFireball.atom", "rsparser-ranchero-DaringFireball.rss", 0),
    ],
)
def test_canonical_urls_overlap_across_formats_of_one_feed(
    first: str, second: str, shared: int
) -> None:
    assert len(canonical_urls(first) & canonical_urls(second) - {None}) == shared


def test_pauldix_variants_overlap_by_guid_when_orig_link_is_missing() -> None:
    # The Alternate capture lacks feedburner:origLink, so its links stay FeedBurner tokens
    # (not derivable); the same 5 posts are still recognisable by guid.
    plain = parse_fixture("feedjira-PaulDixExplainsNothing.xml").entries
    alternate = parse_fixture("feedjira-PaulDixExplainsNothingAlternate.xml").entries
    assert {e.guid for e in plain} == {e.guid for e in alternate}
    assert all(e.canonical_url and "pauldix.net" in e.canonical_url for e in plain)
    assert not {e.canonical_url for e in plain} & {e.canonical_url for e in alternate}
