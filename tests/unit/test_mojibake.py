"""UTF-8 read in a single-byte charset is repaired on every parse path; correct text in
any charset is never touched (RELIABILITY row 25)."""

# Mojibake is made of look-alike characters: that is what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.feeds import parse_feed
from core.feeds.model import MOJIBAKE_NOTE
from core.feeds.mojibake import repair_mojibake
from core.feeds.parse import parse_xml
from tests.conftest import FEED_FIXTURES, SHARED

BASE = "https://feeds.example.org/feed.xml"
#: Every kind of character windows-1252 mojibake hits: accents, €, dashes, curly quotes,
#: "à" (whose UTF-8 second byte is a no-break space in Latin-1), ß.
TEXT = "Café € — naïve à la carte ‘quoted’ Größe"
CORPUS = SHARED / "corpus" / "feeds"
#: The real corpus when it is there (it holds feeds that may not be copied), else ours.
CORPUS_FILES = sorted(
    p for p in (CORPUS if CORPUS.is_dir() else FEED_FIXTURES).iterdir() if p.suffix != ".tsv"
)


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("CafÃ© â‚¬", "Café €"),
        ("Itâ€™s â€œfineâ€\x9d", "It’s “fine”"),
        ("voilÃ\xa0 la carte", "voilà la carte"),
        ("Ã‰tÃ© GrÃ¶ÃŸe", "Été Größe"),
        ("í…ŒìŠ¤íŠ¸", "테스트"),
        ("ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Привет"),
    ],
)
def test_utf8_read_as_windows_1252_or_latin1_is_repaired(broken: str, fixed: str) -> None:
    assert repair_mojibake(broken) == fixed


@pytest.mark.parametrize(
    "correct",
    [
        TEXT,
        "Nação, São Paulo, NÃO",
        "Привет мир! Ёжик, чай",
        "白宫提名艾伦为北约盟军最高司令",
        "테스트 피드",
        "Ελληνικά κείμενα",
        "½ price — 10 °C, © 2026, ±3 µm",
        "Ärger über Öl, Maß und Muße",
        "plain ASCII",
        "",
    ],
)
def test_correct_text_is_left_alone(correct: str) -> None:
    assert repair_mojibake(correct) == correct


def rss(text: str, encoding: str) -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
        f"<title>{text}</title><item><title>{text}</title><author>{text}</author>"
        f"<description>&lt;p&gt;{text}&lt;/p&gt;</description><link>http://e.org/1</link>"
        "</item></channel></rss>"
    )


@pytest.mark.parametrize("declared", ["windows-1252", "ISO-8859-1", "iso-8859-15"])
@pytest.mark.parametrize(
    "content_type",
    [None, "application/rss+xml", "text/xml; charset={}", "application/xml; charset={}"],
)
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "feedparser"])
def test_utf8_bytes_declared_single_byte_read_right_on_both_paths(
    declared: str, content_type: str | None, fast_path: bool
) -> None:
    body = rss(TEXT, declared).encode("utf-8")
    headers = {"content-type": content_type.format(declared)} if content_type else {}
    feed = parse_xml(body, headers, BASE, fast_path=fast_path)
    (entry,) = feed.entries
    assert (feed.title, entry.title, entry.summary, entry.author) == (TEXT,) * 4
    assert feed == parse_xml(body, headers, BASE, fast_path=not fast_path)


def test_repair_is_reported_on_the_feed() -> None:
    feed = parse_xml(rss(TEXT, "windows-1252").encode("utf-8"), {}, BASE)
    assert feed.bozo_reason == f"{MOJIBAKE_NOTE} in 2 place(s)"
    assert feed.entries[0].text_repaired


def test_json_feed_with_double_encoded_text_is_repaired() -> None:
    broken = TEXT.encode("utf-8").decode("cp1252", "replace")
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": broken,
        "items": [{"id": "1", "url": "http://e.org/1", "title": broken, "summary": broken}],
    }
    feed = parse_feed(json.dumps(doc).encode(), {}, BASE)
    assert (feed.title, feed.entries[0].title, feed.entries[0].summary) == (TEXT,) * 3


def declared_as(body: bytes, source: str, target: str) -> bytes:
    """``body`` (in ``source``) re-encoded in ``target``, its XML declaration saying so;
    characters ``target`` lacks become character references (same meaning)."""
    text = body.decode(source)
    text = re.sub(r'encoding="[^"]+"', f'encoding="{target}"', text, count=1)
    return text.encode(target, "xmlcharrefreplace")


def _same_text(a: bytes, b: bytes) -> None:
    ours, reference = parse_feed(a, {}, BASE), parse_feed(b, {}, BASE)
    assert [(e.title, e.summary, e.author) for e in ours.entries] == [
        (e.title, e.summary, e.author) for e in reference.entries
    ]
    assert ours.title == reference.title
    assert not any(e.text_repaired for e in ours.entries)
    assert MOJIBAKE_NOTE not in (ours.bozo_reason or "")


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "iso-8859-5", "utf-8"])
def test_cyrillic_feed_reads_the_same_in_every_charset(charset: str) -> None:
    original = (FEED_FIXTURES / "miniflux-encoding-koi8r.xml").read_bytes()
    reference = declared_as(original, "koi8-r", "utf-8")
    _same_text(declared_as(original, "koi8-r", charset), reference)
    assert "Привет мир" in parse_feed(reference, {}, BASE).entries[0].summary


@pytest.mark.parametrize("charset", ["gb2312", "gbk", "gb18030", "big5", "utf-16"])
def test_chinese_feed_reads_the_same_in_every_charset(charset: str) -> None:
    path = CORPUS / "rss2email-bbc-chinese-feed.atom"
    if not path.is_file():
        pytest.skip("the BBC Chinese feed is read from ../shared/corpus only")
    original = path.read_bytes()
    _same_text(declared_as(original, "utf-8", charset), original)


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "utf-8"])
def test_latin1_feed_reads_the_same_in_every_charset(charset: str) -> None:
    original = (FEED_FIXTURES / "miniflux-parser-encoding_ISO-8859-1.xml").read_bytes()
    _same_text(declared_as(original, "iso-8859-1", charset), original)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_no_corpus_document_is_repaired(path: Path) -> None:
    try:
        feed = parse_feed(path.read_bytes(), {}, BASE)
    except Exception:
        return  # the few documents that are no feed at all
    assert MOJIBAKE_NOTE not in (feed.bozo_reason or "")
    assert not any(entry.text_repaired for entry in feed.entries)
