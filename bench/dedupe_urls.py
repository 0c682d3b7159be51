"""URL-variant duplicates in a day-by-day replay of the whole feed corpus.

Run: ``.venv/bin/python -m bench.dedupe_urls [--list]`` (needs the test PostgreSQL)

One search follows every document of ../shared/corpus/feeds (else tests/fixtures/feeds),
each as its own source. Each document is cut into the snapshots it showed over time: on
each day that one of its items was published, the items published by then (undated items
from the start), written back as a document of its own (XML through ElementTree, JSON
Feed as JSON). Day by day, every snapshot of the day goes through the real path into a
fresh PostgreSQL database (``parse_feed``, ``store_entries``) and then the search's
``collect_stories`` runs, as a daily run would. A document ElementTree cannot read
(broken XML, entity declarations) is replayed as one snapshot on its last day.

A URL-variant duplicate is two stories of the search that are one article. Candidates:
  1. two stories with the same title and the same lead (40+ characters, compared after
     case and punctuation are folded) under two keys: the same article, counted at once;
  2. two stories whose looser key matches (registrable domain, path in lower case without
     a trailing slash, ``/amp`` or an index page, no query, no fragment): counted as one
     article when title and lead match as in 1, as two when both their titles and their
     leads differ, and otherwise looked up in ``bench/url_variant_review.tsv`` (judged by
     reading both items), or listed as unreviewed.
Beside it, possible false merges: one URL key or item id over two URLs whose items differ
in title and lead; and items that share one URL (a link blog's posts about one page, or a
broken link such as the feed's own URL), which URL dedupe makes one story by design.
Goal: 0 duplicates, 0 false merges, 0 unreviewed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from defusedxml import ElementTree as SafeET
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.db.models import Source
from core.db.models import Story as StoryRow
from core.db.session import make_engine
from core.feeds import FeedParseError, ParsedEntry, parse_feed
from core.feeds.parse import without_leading_space
from core.ingest.entries import store_entries
from core.ingest.stories import collect_stories
from core.news.searches import create_search, get_search
from core.tenancy.organizations import create_organization
from tests.support.databases import fresh_pg_database

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "feeds"
FALLBACK = ROOT / "tests" / "fixtures" / "feeds"
REVIEW = ROOT / "bench" / "url_variant_review.tsv"
#: Leads shorter than this are too thin to call two items one article.
MIN_LEAD_CHARS = 40
#: Lead characters compared (feeds cut their excerpts at different lengths).
LEAD_CHARS = 160
#: Second-level labels under a country code that are not a site (``bbc.co.uk``).
SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ne", "or"})


@dataclass(frozen=True)
class Story:
    key: str
    title: str
    lead: str
    url: str


def fold(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def loose_key(url: str) -> str:
    address = re.split(r"[?#]", url, maxsplit=1)[0].split("://", 1)[-1]
    parts = address.split("/", 1)
    labels = parts[0].split(":")[0].lower().split(".")
    site = labels[-3:] if len(labels) > 2 and labels[-2] in SECOND_LEVEL else labels[-2:]
    path = "/" + (parts[1] if len(parts) > 1 else "").lower()
    path = re.sub(r"/(index\.[a-z]+|amp)?/?$", "", re.sub(r"/{2,}", "/", path))
    return ".".join(site) + path


def snapshots(name: str, body: bytes) -> list[tuple[date | None, bytes]]:
    """The document as it stood on each day one of its items was published."""
    base = f"https://feeds.invalid/{name}"
    try:
        entries = parse_feed(body, {}, base).entries
    except FeedParseError:
        return []
    days = sorted({e.published.date() for e in entries if e.published})
    if len(days) <= 1:
        return [(days[0] if days else None, body)]
    cut = _json_cut if body.lstrip()[:1] == b"{" else _xml_cut
    out: list[tuple[date | None, bytes]] = []
    for day in days:
        keep = [e.published is None or e.published.date() <= day for e in entries]
        snapshot = cut(body, keep)
        if snapshot is None:
            return [(days[-1], body)]
        out.append((day, snapshot))
    return out


def _json_cut(body: bytes, keep: list[bool]) -> bytes | None:
    doc = json.loads(body)
    items = doc.get("items")
    if not isinstance(items, list) or len(items) != len(keep):
        return None
    doc["items"] = [item for item, kept in zip(items, keep, strict=True) if kept]
    return json.dumps(doc).encode()


def _xml_cut(body: bytes, keep: list[bool]) -> bytes | None:
    try:
        root = SafeET.fromstring(without_leading_space(body).lstrip(b"\xef\xbb\xbf"))
    except Exception:
        return None
    parents = [
        (parent, child)
        for parent in root.iter()
        for child in parent
        if child.tag.rsplit("}", 1)[-1] in ("item", "entry")
    ]
    if len(parents) != len(keep):
        return None
    for (parent, child), kept in zip(parents, keep, strict=True):
        if not kept:
            parent.remove(child)
    written: bytes = ET.tostring(root, encoding="utf-8")
    return b'<?xml version="1.0" encoding="utf-8"?>' + written


def replay(folder: Path, engine: Engine) -> tuple[int, int, dict[str, set[tuple[str, str, str]]]]:
    """Replay every document day by day into one search; returns the documents cut into
    days, the snapshots, and every (URL, title, lead) parsed under each URL key or item
    id (what the one story of that key stands for)."""
    timeline: list[tuple[date, str, bytes]] = []
    cut_documents = 0
    for path in sorted(folder.iterdir()):
        if path.suffix in (".tsv", ".md"):
            continue
        shots = snapshots(path.name, path.read_bytes())
        cut_documents += len(shots) > 1
        timeline += [(day or date.min, path.name, body) for day, body in shots]
    first = min(day for day, _, _ in timeline if day != date.min) - timedelta(days=1)
    with Session(engine) as s, s.begin():
        org = create_organization(s, name="Replay", slug="replay")
        sources = [{"url": _base(name)} for name in sorted({name for _, name, _ in timeline})]
        news = create_search(s, org.id, name="all", search_query={"query": "", "sources": sources})
        ids = {source.url: source.id for source in s.scalars(select(Source))}
        org_id, news_id = org.id, news.id
    by_day: dict[date, list[tuple[str, bytes]]] = defaultdict(list)
    versions: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for day, name, body in timeline:
        by_day[max(day, first)].append((name, body))
    for number, day in enumerate(sorted(by_day)):
        now = datetime.combine(day, time(12), tzinfo=UTC)
        with Session(engine) as s, s.begin():
            for name, body in by_day[day]:
                feed = parse_feed(body, {}, _base(name))
                store_entries(s, ids[_base(name)], feed, now)
                for entry in feed.entries:
                    version = (entry.canonical_url or "", fold(entry.title), _lead(entry.summary))
                    for key in (_key(entry), getattr(entry, "guid_key", None)):
                        if key:
                            versions[key].add(version)
            news = get_search(s, org_id, news_id)
            collect_stories(s, org_id, news, now=now, first_run=number == 0)
            news.lastRun = now
    return cut_documents, len(timeline), versions


def _key(entry: ParsedEntry) -> str | None:
    return getattr(entry, "url_key", None) or entry.canonical_url  # (earlier layouts too)


def _lead(text: str | None) -> str:
    return fold(text or "")[:LEAD_CHARS]


def _base(name: str) -> str:
    return f"https://feeds.invalid/{name}"


def read_back(engine: Engine) -> dict[str, Story]:
    """The search's stories by URL key."""
    with Session(engine) as s:
        rows = s.execute(
            select(StoryRow.urlKey, StoryRow.title, StoryRow.snippet, StoryRow.url)
        ).all()
    return {key: Story(key, title, lead or "", url) for key, title, lead, url in rows}


def same_article(a: Story, b: Story) -> bool:
    lead = fold(a.lead)[:LEAD_CHARS]
    return (
        fold(a.title) == fold(b.title)
        and len(lead) >= MIN_LEAD_CHARS
        and lead == fold(b.lead)[:LEAD_CHARS]
    )


def clearly_different(a: Story, b: Story) -> bool:
    """Different leads, and titles that differ or are missing (one-page blogs' posts)."""
    titles = fold(a.title), fold(b.title)
    leads = fold(a.lead)[:LEAD_CHARS], fold(b.lead)[:LEAD_CHARS]
    return all(leads) and leads[0] != leads[1] and (titles[0] != titles[1] or not all(titles))


def load_review() -> dict[frozenset[str], str]:
    if not REVIEW.exists():
        return {}
    with REVIEW.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        return {frozenset((row["key_a"], row["key_b"])): row["verdict"] for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print every counted pair")
    args = parser.parse_args()
    folder = CORPUS if CORPUS.is_dir() else FALLBACK
    with fresh_pg_database() as url:
        engine = make_engine(url)
        try:
            cut_documents, shots, seen = replay(folder, engine)
            stories = read_back(engine)
        finally:
            engine.dispose()
    by_title: dict[tuple[str, str], list[Story]] = defaultdict(list)
    by_loose: dict[str, list[Story]] = defaultdict(list)
    for story in stories.values():
        lead = fold(story.lead)[:LEAD_CHARS]
        if len(lead) >= MIN_LEAD_CHARS:
            by_title[(fold(story.title), lead)].append(story)
        by_loose[loose_key(story.url)].append(story)
    review = load_review()
    duplicates: list[tuple[Story, Story, str]] = []
    unreviewed: list[tuple[Story, Story]] = []
    loose_pairs = different = judged = 0
    pairs = {
        frozenset((a.key, b.key)): (a, b)
        for group in itertools.chain(by_title.values(), by_loose.values())
        for a, b in itertools.combinations(group, 2)
    }
    for a, b in pairs.values():
        if same_article(a, b):
            duplicates.append((a, b, "same title and lead"))
            continue
        loose_pairs += 1
        verdict = review.get(frozenset((a.key, b.key)))
        if verdict == "same":
            duplicates.append((a, b, "reviewed: same article"))
        elif verdict is not None:
            judged += 1
        elif clearly_different(a, b):
            different += 1
        else:
            unreviewed.append((a, b))
    merges = [key for key, versions in seen.items() if _different_versions(versions)]
    shared = [key for key, versions in seen.items() if _one_url_many_items(versions)]
    print(f"corpus: {folder}")
    print(f"replay: {shots} snapshots ({cut_documents} documents cut into days), one search")
    print(f"stories: {len(stories)}")
    print(f"URL-variant duplicates: {len(duplicates)}")
    print(f"possible false merges (one key or item id, two articles): {len(merges)}")
    print(
        f"items sharing one URL (one item in two formats, link posts to one page, "
        f"broken links): {len(shared)}"
    )
    print(
        f"other loose-key pairs: {loose_pairs} ({different} different title and lead, "
        f"{judged} judged different in {REVIEW.name}, {len(unreviewed)} unreviewed)"
    )
    for a, b, why in duplicates if args.list else duplicates[:10]:
        print(f"  duplicate ({why}): {a.key}  |  {b.key}")
    for a, b in unreviewed:
        print(f"  unreviewed: {a.key}\t{b.key}\t{a.title[:40]!r} / {b.title[:40]!r}")
    for key in merges:
        print(f"  merged: {key}: {sorted(seen[key])[:2]}")
    for key in shared:
        print(f"  one URL: {key}: {sorted(title for _, title, _ in seen[key])}")


def _different_versions(versions: set[tuple[str, str, str]]) -> bool:
    """Two URLs under one key whose items differ in title and lead. (One URL shared by
    two items, such as a sponsor linked in two weeks, is the same link, not a merge.)"""
    return any(
        a[0] != b[0] and a[1] and b[1] and a[1] != b[1] and a[2] and b[2] and a[2] != b[2]
        for a, b in itertools.combinations(versions, 2)
    )


def _one_url_many_items(versions: set[tuple[str, str, str]]) -> bool:
    return any(
        a[0] == b[0] and a[1] != b[1] and a[2] != b[2]
        for a, b in itertools.combinations(versions, 2)
    )


if __name__ == "__main__":
    main()
