"""Relevance benchmark on real labeled news: `.venv/bin/python -m bench.relevance`.

AG News (test split, 7,600 items, 4 topics) is read in place from
``../shared/corpus/labeled/ag_news/test.csv`` (never copied here) and split by row
parity: even rows are the *development* half every constant was chosen on (``--dev``
reports it), odd rows the *evaluation* half reported by default. One search per class.

Fit as production fits: the items arrive in file order, 100 per run, and each run's
scorer is fitted on the run's entries and the newest before them (at most 2,000), see
bench/relevance_sim.py. Headlines are **in-filter** MAP (the query is a hard filter:
only its matches are ranked, a relevant item it missed counts as never found) and
**delivered F1** (what passes the query and the run's threshold, against every relevant
item). ``--queries short`` (the default) uses OR-queries of at most 8 words without
entity names, written before any result was looked at; ``--queries long`` the earlier
60-70-word queries (a second table).

Feedback: per search, label source and draw (``DRAWS``), ``RESERVE`` items are set aside
at random, from the query's matches (what users see as stories) or from every item
(labels on suggestions and stories alike); the first 10, 50 and 200 of them are the
labels, and every other item is the evaluation set, the same at every label count and for
both methods. The baseline is logistic regression on TF-IDF plus the query cosine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.relevance_sim import (
    NOW,
    Corpus,
    LogisticBaseline,
    Search,
    f1,
    in_filter_ap,
    load_ag_news,
    long_articles,
)
from core.relevance.learning import train_model
from core.relevance.query import parse_query
from core.relevance.scorer import fit_scorer, score_batch
from core.relevance.self_training import fit_vectorizer
from core.relevance.settings import RelevanceSettings

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "corpus" / "labeled" / "ag_news" / "test.csv"
LABEL_COUNTS = (0, 10, 50, 200)
DRAWS = 5
#: Items set aside per draw as labels, the largest label count.
RESERVE = 200
SOURCES = ("matches", "random")
#: Fixed thresholds tried for "the best fixed threshold" (one for every search).
GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
#: The former default threshold, for comparison.
OLD_DEFAULT = 0.35
#: Throughput: articles of this many characters, this many per search.
ARTICLE_CHARS = 2000
SPEED_ENTRIES = 2000
SPEED_ROUNDS = 3

#: One search per AG News class (1 World, 2 Sports, 3 Business, 4 Sci/Tech), at most
#: 8 words, no names, written down before any result was looked at.
SHORT_QUERIES = {
    1: "government OR war OR election OR minister OR military OR president OR peace OR talks",
    2: "game OR team OR season OR coach OR league OR championship OR players OR win",
    3: "economy OR market OR shares OR profit OR company OR prices OR investors OR earnings",
    4: "technology OR software OR internet OR computer OR science OR research OR space OR wireless",
}
#: The earlier broad OR-lists (60-70 terms, some naming 2004 entities).
LONG_QUERIES = {
    1: "government* OR minister* OR president* OR election* OR vote* OR war OR troops OR "
    "military OR army OR soldiers OR rebels OR militants OR insurgents OR killed OR kill* OR "
    "attack* OR bomb* OR violence OR peace OR talks OR nuclear OR hostage* OR iraq* OR "
    "iran* OR afghan* OR pakistan* OR india* OR china OR chinese OR russia* OR korea* OR "
    "japan* OR palestinian* OR israel* OR gaza OR sudan* OR darfur OR africa* OR europe* OR "
    "arab* OR muslim* OR baghdad OR police OR court OR leader* OR diplomat* OR parliament OR "
    "opposition OR protest* OR refugees OR crisis OR country OR nation* OR international OR "
    "foreign OR capital OR un OR nato OR eu",
    2: "sport* OR game OR games OR team* OR coach* OR season OR league OR cup OR champion* OR "
    "olympic* OR athens OR medal* OR football OR soccer OR baseball OR basketball OR tennis OR "
    "golf OR hockey OR cricket OR racing OR nfl OR nba OR nhl OR mlb OR ncaa OR win OR wins OR "
    "won OR victory OR defeat* OR beat OR match OR player* OR tournament OR open OR title OR "
    "final OR finals OR playoff* OR series OR quarterback OR pitcher OR inning* OR touchdown* OR "
    "goal* OR score* OR striker OR stadium OR yankees OR red sox OR club OR fans OR injur* OR "
    "record OR points OR round",
    3: "business* OR econom* OR market* OR stock* OR shares OR share OR profit* OR earnings OR "
    "revenue* OR oil OR crude OR prices OR price OR company OR companies OR corp* OR inc OR "
    "bank* OR sales OR investor* OR invest* OR dollar OR euro OR inflation OR deal OR merger* OR "
    "acquisition* OR acquire* OR billion OR million OR wall street OR retail* OR quarter* OR "
    "quarterly OR fed OR interest OR rates OR trade OR trading OR jobs OR financial OR "
    "finance OR fund* OR debt OR bankruptcy OR airline* OR ceo OR executive* OR industry OR "
    "growth OR consumer* OR exports OR imports OR percent OR analysts OR nasdaq OR dow",
    4: "technology OR tech OR software OR internet OR computer* OR microsoft OR google OR "
    "yahoo OR apple OR ibm OR intel OR sun OR oracle OR web OR online OR site OR space OR "
    "nasa OR scientist* OR science OR research* OR study OR wireless OR mobile OR phone* OR "
    "digital OR linux OR windows OR chip* OR processor* OR network* OR broadband OR server* OR "
    "security OR virus OR spam OR hackers OR data OR users OR search OR browser OR email OR "
    "pc OR pcs OR devices OR video OR music OR download* OR ipod OR games OR planet OR mars OR "
    "moon OR satellite OR species OR climate OR energy OR gene* OR dna OR researchers OR "
    "version OR launch* OR open source",
}

Results = dict[tuple[Any, ...], list[Any]]


def draw_reserve(
    pool: np.ndarray[Any, Any], relevant: np.ndarray[Any, Any], rng: random.Random
) -> list[int]:
    """``RESERVE`` items of ``pool`` in random order whose first 10 hold two of each
    label at least (a model needs both kinds; redrawn until so)."""
    while True:
        reserve = [int(i) for i in rng.sample(list(pool), min(RESERVE, len(pool)))]
        positives = int(relevant[reserve[:10]].sum())
        if 2 <= positives <= 8:
            return reserve


def grid_f1(
    scores: np.ndarray[Any, Any],
    search: Search,
    relevant: np.ndarray[Any, Any],
    kept: np.ndarray[Any, Any],
) -> list[float]:
    return [f1(search.matched & kept & (scores >= t), relevant & kept) for t in GRID]


def evaluate_search(search: Search, relevant: np.ndarray[Any, Any], results: Results) -> None:
    """Add one search's figures to ``results``."""
    everything = np.ones(len(relevant), dtype=bool)
    query = search.query_only
    baseline = LogisticBaseline(search)
    delivered = search.matched & (query.scores >= query.thresholds)
    results[("table", "keyword match")].append(
        (
            in_filter_ap(search.keyword, search.matched, relevant, everything),
            f1(search.matched, relevant),
        )
    )
    results[("table", "TF-IDF cosine in the filter")].append(
        (in_filter_ap(baseline.cosine, search.matched, relevant, everything), np.nan)
    )
    results[("table", "newsmon query score")].append(
        (in_filter_ap(query.scores, search.matched, relevant, everything), f1(delivered, relevant))
    )
    results[("old default",)].append(f1(search.matched & (query.scores >= OLD_DEFAULT), relevant))
    results[("grid", "all")].append(grid_f1(query.scores, search, relevant, everything))
    results[("filter recall",)].append(float(relevant[search.matched].sum() / relevant.sum()))
    for source in SOURCES:
        pool = np.flatnonzero(search.matched) if source == "matches" else np.arange(len(relevant))
        for draw in range(DRAWS):
            reserve = draw_reserve(pool, relevant, random.Random(f"{draw}"))
            kept = np.ones(len(relevant), dtype=bool)
            kept[reserve] = False
            for n in LABEL_COUNTS:
                picked = reserve[:n]
                model = search.train(picked, relevant) if n else None
                scored = search.score(model) if model is not None else query
                if model is not None:
                    results[("speed", "feedback")].append(len(relevant) / scored.seconds)
                    results[("stage", source, n)].append(model.stage)
                key = (source, n)
                results[("ap", *key)].append(
                    in_filter_ap(scored.scores, search.matched, relevant, kept)
                )
                results[("lr", *key)].append(
                    in_filter_ap(baseline.scores(picked, relevant), search.matched, relevant, kept)
                )
                chosen = search.matched & kept & (scored.scores >= scored.thresholds)
                results[("f1", *key)].append(f1(chosen, relevant & kept))
                results[("grid", *key)].append(grid_f1(scored.scores, search, relevant, kept))
                if n == LABEL_COUNTS[-1]:
                    missed = relevant & kept & ~search.matched
                    suggested = scored.suggested & kept
                    results[("suggest", source)].append(
                        (int((suggested & relevant).sum()), int(suggested.sum()), int(missed.sum()))
                    )


def report(queries: dict[int, str], corpus: Corpus, title: str) -> None:
    results: Results = _results()
    fits, runs = [], 0
    for topic, text in queries.items():
        search = Search(text, corpus, RelevanceSettings())
        fits.append(len(corpus.labels) / search.fit_seconds)
        runs = len(search.runs)
        evaluate_search(search, corpus.labels == topic, results)
    recall = float(np.mean(results[("filter recall",)]))
    print(f"\n## {title}: {len(corpus.labels):,} items, {len(queries)} searches\n")
    print(f"The filter passes {recall:.0%} of the relevant items (the cap on in-filter MAP).\n")
    print("| method | MAP in filter | delivered F1 |")
    print("|---|---|---|")
    for (_, name), values in ((k, v) for k, v in results.items() if k[0] == "table"):
        ap, delivered = np.nanmean(np.asarray(values, dtype=float), axis=0)
        shown = "-" if np.isnan(delivered) else f"{delivered:.3f}"
        print(f"| {name} | {ap:.3f} | {shown} |")
    best = np.mean(results[("grid", "all")], axis=0)
    print(
        f"\nnewsmon's F1 at the adaptive threshold vs the best fixed one (in hindsight, one "
        f"for every search): {np.mean(results[('table', 'newsmon query score')], axis=0)[1]:.3f}"
        f" vs {best.max():.3f} at {GRID[int(best.argmax())]:.2f}; at the former default "
        f"{OLD_DEFAULT}: {np.mean(results[('old default',)]):.3f}"
    )
    print(
        "\n| labels from | labels | LR + cosine MAP | newsmon + feedback MAP | "
        "F1 adaptive | F1 best fixed | words used |"
    )
    print("|---|---|---|---|---|---|---|")
    for source in SOURCES:
        for n in LABEL_COUNTS:
            grid = np.mean(results[("grid", source, n)], axis=0)
            stages = results[("stage", source, n)]
            words = f"{stages.count('words')}/{len(stages)}" if stages else "-"
            lr, ap = np.mean(results[("lr", source, n)]), np.mean(results[("ap", source, n)])
            adaptive = np.mean(results[("f1", source, n)])
            print(
                f"| {source} | {n} | {lr:.4f} | {ap:.4f} | {adaptive:.3f} | "
                f"{grid.max():.3f} at {GRID[int(grid.argmax())]:.2f} | {words} |"
            )
    for source in SOURCES:
        hits, suggested, missed = np.sum(results[("suggest", source)], axis=0)
        print(
            f"\nSuggestions at {LABEL_COUNTS[-1]} labels from {source}: {suggested} suggested, "
            f"{hits} relevant (precision {hits / max(1, suggested):.2f}), recovering "
            f"{hits / max(1, missed):.0%} of the {missed} relevant items the filter missed"
        )
    print(
        f"\nProduction-style fit: {np.median(fits):,.0f} entries/s per search ({runs} fits); "
        f"feedback model applied run by run: {np.median(results[('speed', 'feedback')]):,.0f} "
        "entries/s (median)"
    )


def _results() -> Results:
    from collections import defaultdict

    return defaultdict(list)


def throughput(corpus: Corpus) -> None:
    """Fit + score and scoring with a feedback model, on long articles."""
    articles, classes = long_articles(corpus, SPEED_ENTRIES, ARTICLE_CHARS)
    texts = [a.text for a in articles]
    query = parse_query(SHORT_QUERIES[3])
    settings = RelevanceSettings()
    relevant = classes == 3
    scorer = fit_scorer(query, settings, texts)
    picked = list(range(200))
    query_scores = [v.score for v in scorer.score(articles[:200], now=NOW)]
    model = train_model(
        [texts[i] for i in picked],
        list(relevant[picked]),
        query_scores,
        fit_vectorizer(texts),
        stream=texts,
    )
    rows: dict[str, list[float]] = {
        "fit + score": [],
        "fit + score with feedback": [],
        "score with feedback": [],
    }
    for _ in range(SPEED_ROUNDS):
        _, speed = score_batch(query, settings, [], articles, now=NOW)
        rows["fit + score"].append(speed.per_second)
        _, speed = score_batch(query, settings, [], articles, now=NOW, model=model)
        rows["fit + score with feedback"].append(speed.per_second)
        fitted = fit_scorer(query, settings, texts, model)
        started = time.perf_counter()
        fitted.score(articles, now=NOW)
        rows["score with feedback"].append(len(articles) / (time.perf_counter() - started))
    length = np.mean([len(t) for t in texts])
    stage = model.stage if model is not None else "none"
    print(f"\n## Throughput: {len(articles):,} articles of {length:,.0f} characters")
    print(f"(feedback model trained on 200 labels: {stage})\n")
    for name, values in rows.items():
        print(f"- {name}: {min(values):,.0f}-{max(values):,.0f} entries/s ({SPEED_ROUNDS} rounds)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dev", action="store_true", help="report the development half")
    parser.add_argument(
        "--queries", choices=("short", "long", "both", "none"), default="both", help="which tables"
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the throughput part")
    args = parser.parse_args(argv)
    if not AG_NEWS.exists():
        print(f"skipped: {AG_NEWS} is absent")
        return 0
    corpus = load_ag_news(AG_NEWS, 0 if args.dev else 1)
    half = "development" if args.dev else "evaluation"
    if args.queries in ("short", "both"):
        report(SHORT_QUERIES, corpus, f"Short queries, {half} half")
    if args.queries in ("long", "both"):
        report(LONG_QUERIES, corpus, f"Long queries, {half} half")
    if not args.no_speed:
        throughput(corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
