"""Near-duplicate clustering benchmark: ``.venv/bin/python -m bench.clusters``.

1. Pair precision and recall of :func:`core.ingest.similarity.compare` on the labelled
   pairs of ``tests/fixtures/clusters/pairs.jsonl`` (what they are: the README beside it):
   the development pairs by grouped 5-fold cross-validation (in each fold the constants of
   :data:`GRID` are chosen on the four other folds: highest recall at precision >= 0.95,
   else highest precision), the constants chosen on all of them (checked against the
   shipped ones) and the development pairs as shipped; then the test pairs, which share
   no story with the development pairs and were never used to choose anything. Per case,
   as shipped. Then the second, blind reading of the pairs (``second_reading.tsv``): how
   far it agrees with the labels, and the rules' figures by it and where both agree.
2. A replay of the corpus feeds day by day (entries ordered by publication date, one run
   per day at the end of the day) through the real ``collect_stories`` and
   ``plan_and_create`` on a fresh PostgreSQL database (SQLite with ``--sqlite``): one
   search following every feed, threshold 0 (every story passes the search's rules, so
   what is not delivered is clustering's doing). Prints the stories never delivered that a
   reader would have wanted: those hidden under a story they are not labelled the same
   article as (unlabelled pairs are listed to be judged), or not delivered at all; and
   the recurring-title losses among them (a title that recurs in its feed under another
   URL, digits ignored).
3. AG News as one search in one run, through :func:`core.ingest.clusters.assign`: the
   stories hidden, each judged by the labels, and the throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import core.ingest.similarity as similarity
from bench.cluster_pairs import (
    FEED_BASE,
    FEED_DIRS,
    PAIRS,
    Pair,
    ag_rows,
    ag_text,
    load,
    second_reading,
)
from core.db.migrate import upgrade
from core.db.models import Channel, DigestStory, NewsChannel, Source, Story
from core.db.session import make_engine
from core.delivery.digests import plan_and_create
from core.feeds import FeedParseError, parse_feed
from core.ingest.clusters import DEFAULT_CLUSTER_THRESHOLD, Doc, assign
from core.ingest.entries import store_entries
from core.ingest.stories import collect_stories
from core.news.searches import create_search
from core.tenancy.organizations import create_organization
from tests.support.databases import fresh_pg_database

#: Constants chosen per fold in cross-validation (with the threshold), and their values.
GRID: dict[str, Sequence[float]] = {
    "MIN_COPIED_WORDS": (9, 12, 15),
    "STRICT_HEADLINE": (0.7, 0.8, 0.9),
    "MIN_OPENING_ORDER": (0.7, 0.8),
    "MIN_CONTAINED_ORDER": (0.4, 0.5),
}
THRESHOLDS = (0.55, 0.6, 0.65, 0.7)
FOLDS = 5
#: Precision a fold's constants must reach on the other folds before recall counts.
TARGET_PRECISION = 0.95
#: Where a replayed entry without a date goes: the newest dated day of its feed.
UNDATED_DAY = date(2000, 1, 1)


def rates(scored: Sequence[tuple[float, bool]], threshold: float) -> tuple[int, int, int]:
    """True positives, false positives, false negatives at ``threshold``."""
    tp = sum(1 for score, same in scored if same and score >= threshold)
    fp = sum(1 for score, same in scored if not same and score >= threshold)
    fn = sum(1 for score, same in scored if same and score < threshold)
    return tp, fp, fn


def pr(tp: int, fp: int, fn: int) -> str:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return f"precision {precision:.3f} ({tp}/{tp + fp}), recall {recall:.3f} ({tp}/{tp + fn})"


@contextlib.contextmanager
def constants(values: dict[str, float]) -> Iterator[None]:
    old = {name: getattr(similarity, name) for name in values}
    for name, value in values.items():
        setattr(similarity, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(similarity, name, value)


def _best(
    scores: list[list[float]], pairs: Sequence[Pair], rows: Sequence[int]
) -> tuple[int, float]:
    """The configuration and threshold with the highest recall at :data:`TARGET_PRECISION`
    on ``rows`` (else the highest precision)."""
    best: tuple[tuple[float, float], int, float] | None = None
    for c, threshold in itertools.product(range(len(scores)), THRESHOLDS):
        tp, fp, fn = rates([(scores[c][i], pairs[i].same) for i in rows], threshold)
        precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
        key = (recall, precision) if precision >= TARGET_PRECISION else (-1.0, precision)
        if best is None or key > best[0]:
            best = (key, c, threshold)
    assert best is not None
    return best[1], best[2]


def cross_validate(pairs: Sequence[Pair]) -> tuple[int, int, int, list[str]]:
    """Out-of-fold counts over the development pairs, and the constants each fold chose
    (then those chosen on all of them, which is what ships)."""
    configs = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    scores: list[list[float]] = []
    for config in configs:
        with constants(config):
            scores.append([similarity.compare(p.a, p.b).score for p in pairs])
    totals, chosen = [0, 0, 0], []
    for fold in range(FOLDS):
        train = [i for i, p in enumerate(pairs) if p.fold != fold]
        test = [i for i, p in enumerate(pairs) if p.fold == fold]
        c, threshold = _best(scores, pairs, train)
        counts = rates([(scores[c][i], pairs[i].same) for i in test], threshold)
        totals = [t + n for t, n in zip(totals, counts, strict=True)]
        chosen.append(f"fold {fold}: threshold {threshold} {configs[c]}")
    c, threshold = _best(scores, pairs, range(len(pairs)))
    shipped = {name: getattr(similarity, name) for name in GRID}
    agree = shipped == configs[c] and threshold == DEFAULT_CLUSTER_THRESHOLD
    chosen.append(
        f"all development pairs: threshold {threshold} {configs[c]} "
        f"({'as shipped' if agree else f'NOT as shipped: {DEFAULT_CLUSTER_THRESHOLD} {shipped}'})"
    )
    return totals[0], totals[1], totals[2], chosen


def kappa(pairs: Sequence[tuple[bool, bool]]) -> float:
    """Cohen's kappa of two readings (agreement beyond what their base rates give)."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    chance = first * second + (1 - first) * (1 - second)
    return (observed - chance) / (1 - chance) if chance < 1 else 1.0


def agreement_report(pairs: Sequence[Pair], found: set[str]) -> None:
    """The second, blind reading beside the labels: how far two careful readers of one
    rule agree, and the shipped rules' figures (``found``: the pairs they match) by either
    reading and where both agree."""
    second = second_reading()
    print("second reading (blind, same rule):")
    for split in ("dev", "test"):
        group = [p for p in pairs if p.split == split]
        readings = [(p.same, second[p.id]) for p in group]
        both = [p for p in group if p.same == second[p.id]]
        agreed = sum(a == b for a, b in readings)
        print(
            f"  {split}: agree on {agreed}/{len(group)} (kappa {kappa(readings):.3f}); "
            f"the second reading as a clusterer, scored by the labels: "
            f"{pr(*rates([(float(b), a) for a, b in readings], 0.5))}"
        )
        print(
            "    shipped rules by the second reading: "
            + pr(*rates([(float(p.id in found), second[p.id]) for p in group], 0.5))
        )
        print(
            f"    shipped rules on the {len(both)} pairs both readings agree on: "
            + pr(*rates([(float(p.id in found), p.same) for p in both], 0.5))
        )
    rewrites = [p for p in pairs if p.kind == "rewrite" and p.same]
    print(
        f"  rewrites labelled same: the second reading agrees on "
        f"{sum(second[p.id] for p in rewrites)}/{len(rewrites)}"
    )


def pair_report(pairs: Sequence[Pair], skipped: int) -> set[str]:
    """Print the pairs' figures; returns the ids of the pairs the shipped rules match."""
    dev = [p for p in pairs if p.split == "dev"]
    test = [p for p in pairs if p.split == "test"]
    print(
        f"labelled pairs: {len(pairs)} resolved ({sum(p.same for p in pairs)} same), "
        f"{skipped} skipped (their source is not on this machine: ../shared)"
    )
    tp, fp, fn, chosen = cross_validate(dev)
    print(
        f"development pairs ({len(dev)}, {sum(p.same for p in dev)} same), grouped "
        f"{FOLDS}-fold cross-validation: {pr(tp, fp, fn)}"
    )
    for line in chosen:
        print(f"  {line}")
    tp, fp, fn, _ = cross_validate(dev + test)
    print(
        f"development and test pairs ({len(dev) + len(test)}), grouped {FOLDS}-fold "
        f"cross-validation over the whole set: {pr(tp, fp, fn)}"
    )
    shipped = {p.id: similarity.compare(p.a, p.b) for p in pairs}
    threshold = DEFAULT_CLUSTER_THRESHOLD
    dev_counts = rates([(shipped[p.id].score, p.same) for p in dev], threshold)
    print(
        f"development pairs as shipped (threshold {threshold}, constants chosen on all of "
        f"them, so optimistic): {pr(*dev_counts)}"
    )
    print(
        f"test pairs ({len(test)}, {sum(p.same for p in test)} same; no story shared with "
        f"a development pair; labelled before these rules were written, never tuned on): "
        f"{pr(*rates([(shipped[p.id].score, p.same) for p in test], threshold))}"
    )
    print(
        "per case, development and test pairs as shipped (same-article pairs found, "
        "different-article pairs kept apart):"
    )
    measured = dev + test
    for kind in sorted({p.kind for p in measured}):
        group = [p for p in measured if p.kind == kind]
        found = sum(1 for p in group if p.same and shipped[p.id].score >= threshold)
        apart = sum(1 for p in group if not p.same and shipped[p.id].score < threshold)
        same = sum(p.same for p in group)
        print(f"  {kind:22} {found}/{same} same found, {apart}/{len(group) - same} apart")
    return {pair_id for pair_id, match in shipped.items() if match.score >= threshold}


def _label_index() -> dict[frozenset[str], bool]:
    """Labels of pairs between corpus entries (by canonical URL) and AG News rows."""
    labels: dict[frozenset[str], bool] = {}
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        keys = [
            ref.get("url") or (f"ag:{ref['ag_news']}" if "ag_news" in ref else None)
            for ref in (item["a"], item["b"])
        ]
        if all(keys):
            labels[frozenset(k for k in keys if k)] = item["label"] == "same"
    return labels


def _recurring_key(title: str) -> str:
    return re.sub(r"[\d\W_]+", " ", title.casefold()).strip()


def corpus_feeds() -> list[tuple[str, Any]]:
    """Every corpus feed that parses: ../shared/corpus/feeds, else the fixtures."""
    folder = next((d for d in reversed(FEED_DIRS) if d.is_dir()), FEED_DIRS[0])
    feeds = []
    for path in sorted(folder.iterdir()):
        if path.suffix in {".tsv", ".md"}:
            continue
        with contextlib.suppress(FeedParseError):
            feeds.append((path.name, parse_feed(path.read_bytes(), {}, FEED_BASE + path.name)))
    return feeds


def replay(url: str) -> None:
    """The corpus feeds day by day through the real collect and plan steps."""
    engine = make_engine(url)
    feeds = corpus_feeds()
    days: defaultdict[date, list[tuple[int, Any]]] = defaultdict(list)
    recurring_titles: Counter[tuple[str, str]] = Counter()
    for number, (name, feed) in enumerate(feeds):
        dated = [e.published.date() for e in feed.entries if e.published]
        newest = max(dated) if dated else UNDATED_DAY
        for entry in feed.entries:
            days[entry.published.date() if entry.published else newest].append((number, entry))
            if entry.title and entry.canonical_url:
                recurring_titles[(name, _recurring_key(entry.title))] += 1
    with Session(engine) as session, session.begin():
        org = create_organization(session, name="replay", slug="replay")
        sources = []
        for name, _ in feeds:
            source = Source(url=f"https://replay.invalid/{name}", type="feed")
            session.add(source)
            sources.append(source)
        session.flush()
        news = create_search(
            session,
            org.id,
            name="corpus",
            search_query={"query": "", "sources": [{"url": s.url} for s in sources]},
            relevance_settings={"threshold": 0.0},
        )
        channel = Channel(organizationId=org.id, type="webhook", name="replay", config={})
        session.add(channel)
        session.flush()
        session.add(NewsChannel(organizationId=org.id, newsId=news.id, channelId=channel.id))
        org_id, news_id = org.id, news.id
        source_ids = [s.id for s in sources]
    start = time.perf_counter()
    for day in sorted(days):
        now = datetime.combine(day + timedelta(days=1), day_time(), tzinfo=UTC)
        by_feed: defaultdict[int, list[Any]] = defaultdict(list)
        for number, entry in days[day]:
            by_feed[number].append(entry)
        with Session(engine) as session, session.begin():
            for number, entries in by_feed.items():
                feed = replace(feeds[number][1], entries=tuple(entries))
                store_entries(session, source_ids[number], feed, now)
            search = session.get(type(news), news_id)
            assert search is not None
            collect_stories(session, org_id, search, now=now, first_run=False)
            plan_and_create(session, org_id, news_id, now=now)
            search.lastRun = now
    elapsed = time.perf_counter() - start
    _replay_report(engine, feeds, recurring_titles, len(days), elapsed)
    engine.dispose()


def _replay_report(
    engine: Any,
    feeds: list[tuple[str, Any]],
    recurring: Counter[tuple[str, str]],
    runs: int,
    elapsed: float,
) -> None:
    feed_of = {e.canonical_url: name for name, feed in feeds for e in feed.entries}
    labels = _label_index()
    in_digest = exists().where(DigestStory.storyId == Story.id)
    with Session(engine) as session:
        rows = session.execute(
            select(Story.id, Story.url, Story.title, Story.duplicateOfId, in_digest)
        ).all()
    by_id = {row.id: row for row in rows}
    delivered = sum(1 for row in rows if row[4])
    hidden = [row for row in rows if row.duplicateOfId]
    lost, unjudged, recurring_lost = [], [], []
    for row in rows:
        if row[4]:
            continue
        lead = by_id.get(row.duplicateOfId) if row.duplicateOfId else None
        label = labels.get(frozenset({row.url, lead.url})) if lead else False
        if label is None:
            unjudged.append((row, lead))
        elif not label:
            lost.append((row, lead))
            if recurring[(feed_of.get(row.url, ""), _recurring_key(row.title))] > 1:
                recurring_lost.append(row)
    print(
        f"replay: {len(feeds)} feeds, {runs} simulated days, {len(rows)} stories in "
        f'{elapsed:.1f} s; delivered {delivered}, sent as "also reported by" '
        f"{len(hidden)} ({len(hidden) - len(lost) - len(unjudged)} labelled the same "
        f"article as their lead)"
    )
    print(
        f"stories never delivered that a reader would have wanted: {len(lost)}"
        f" (+{len(unjudged)} not yet judged); recurring-title losses: {len(recurring_lost)}"
    )
    for row, lead in [*lost, *unjudged]:
        print(f"  {row.url} {row.title[:60]!r} under {lead.url if lead else None}")


def ag_stream() -> None:
    """AG News as one search in one run, through the pure membership decision."""
    rows = ag_rows()
    if rows is None:
        print("AG News stream: skipped (../shared/corpus/labeled/ag_news not here)")
        return
    now = datetime(2004, 10, 1, tzinfo=UTC)
    docs = [
        Doc(str(i), similarity.Text(ag_text(r[1]), ag_text(r[2]), None, f"ag{i}.invalid"), now)
        for i, r in enumerate(rows)
    ]
    start = time.perf_counter()
    changes = assign(docs)
    elapsed = time.perf_counter() - start
    labels = _label_index()
    verdicts: Counter[str] = Counter()
    for story, change in changes.items():
        if change.duplicate_of is not None:
            label = labels.get(frozenset({f"ag:{story}", f"ag:{change.duplicate_of}"}))
            verdicts["unjudged" if label is None else "same" if label else "different"] += 1
    print(
        f"AG News as one run: {len(docs)} stories clustered in {elapsed:.1f} s "
        f"({len(docs) / elapsed:.0f} stories/s); {sum(verdicts.values())} hidden as copies: "
        f"{verdicts['same']} labelled the same article as their lead, "
        f"{verdicts['different']} labelled different, {verdicts['unjudged']} not judged"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="replay on SQLite")
    args = parser.parse_args()
    pairs, skipped = load()
    agreement_report(pairs, pair_report(pairs, skipped))
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'replay.db'}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            replay(url)
    else:
        with fresh_pg_database() as url:
            replay(url)
    ag_stream()


if __name__ == "__main__":
    main()
