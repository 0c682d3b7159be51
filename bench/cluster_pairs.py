"""The labelled same-article / different-article pairs of ``tests/fixtures/clusters/pairs.jsonl``
(see the README beside it), resolved to what :func:`core.ingest.similarity.compare`
reads.

A pair's stories are references: a row of AG News (read in place from
``../shared/corpus/labeled/ag_news/test.csv``, never copied here), an entry of a corpus feed
(``tests/fixtures/feeds``, else ``../shared/corpus/feeds``), or text written for the set.
References that cannot be resolved on this machine (no ``../shared``) are skipped and
counted, so the tests and the bench run on a fresh clone with the rest.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.feeds import FeedParseError, parse_feed
from core.ingest.similarity import Text

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "fixtures" / "clusters" / "pairs.jsonl"
#: A second, blind reading of every pair under the same rule (see the README beside it).
SECOND_READING = ROOT / "tests" / "fixtures" / "clusters" / "second_reading.tsv"
SHARED = ROOT.parent / "shared" / "corpus"
AG_NEWS = SHARED / "labeled" / "ag_news" / "test.csv"
FEED_DIRS = (ROOT / "tests" / "fixtures" / "feeds", SHARED / "feeds")
#: Base URL the feeds are parsed against (their links are absolute anyway).
FEED_BASE = "http://127.0.0.1/"


@dataclass(frozen=True)
class Pair:
    """A labelled pair: ``same`` is the label, ``kind`` the hard case it stands for."""

    id: str
    split: str
    fold: int | None
    same: bool
    kind: str
    a: Text
    b: Text


def ag_text(raw: str) -> str:
    """AG News text as a feed parser would hand it over: its mangled entities (" #39;",
    " quot;") and the HTML left in some leads undone."""
    text = raw.replace("\\", " ")
    for entity, char in (("#39;", "'"), ("quot;", '"'), ("#36;", "$"), ("amp;", "&")):
        text = text.replace(" " + entity, char).replace(entity, char)
    text = re.sub(r"<[^>]*>", " ", html.unescape(text))
    return " ".join(text.split())


@cache
def ag_rows() -> list[list[str]] | None:
    """AG News test rows, or None when ../shared is not there."""
    if not AG_NEWS.is_file():
        return None
    with AG_NEWS.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


@cache
def feed_entries(name: str) -> dict[str, Any] | None:
    """A corpus feed's entries by canonical URL, or None when the file is not here."""
    for folder in FEED_DIRS:
        path = folder / name
        if path.is_file():
            try:
                feed = parse_feed(path.read_bytes(), {}, FEED_BASE + name)
            except FeedParseError:
                return None
            return {e.canonical_url: e for e in feed.entries if e.canonical_url}
    return None


def resolve(ref: dict[str, Any]) -> Text | None:
    """The story a reference names, or None if its source is not on this machine."""
    if "text" in ref:
        item = ref["text"]
        published = item.get("published")
        return Text(
            item["title"],
            item.get("lead", ""),
            datetime.fromisoformat(published) if published else None,
            item.get("source"),
        )
    if "ag_news" in ref:
        rows = ag_rows()
        if rows is None:
            return None
        row = rows[ref["ag_news"]]
        if hashlib.sha1(row[1].encode()).hexdigest()[:12] != ref["title_sha1"]:
            raise ValueError(f"AG News row {ref['ag_news']} is not the one labelled")
        return Text(ag_text(row[1]), ag_text(row[2]))
    entries = feed_entries(ref["feed"])
    if entries is None:
        return None
    entry = entries[ref["url"]]
    host = urlsplit(entry.url or ref["url"]).hostname
    return Text(entry.title, entry.summary, entry.published, host)


def load(path: Path = PAIRS) -> tuple[list[Pair], int]:
    """Every pair this machine can resolve, and how many it could not."""
    pairs, skipped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        a, b = resolve(item["a"]), resolve(item["b"])
        if a is None or b is None:
            skipped += 1
            continue
        pairs.append(
            Pair(
                item["id"],
                item["split"],
                item["fold"],
                item["label"] == "same",
                item["kind"],
                a,
                b,
            )
        )
    return pairs, skipped


def second_reading(path: Path = SECOND_READING) -> dict[str, bool]:
    """The second reading's label of each pair, by pair id (True: ``same``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    labels = {row["id"]: row["label"] == "same" for row in rows}
    if len(labels) != len(rows) or any(r["label"] not in ("same", "different") for r in rows):
        raise ValueError(f"{path.name}: one row per pair, labelled same or different")
    return labels
