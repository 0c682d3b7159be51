"""Relevance benchmark on real labeled news: `.venv/bin/python -m bench.relevance`.

AG News (test split, 7,600 items, 4 topics) is read in place from
``../shared/corpus/labeled/ag_news/test.csv`` (never copied here) and split in two by
row parity: even rows are the *development* half the constants were chosen on
(``--dev`` reports it), odd rows the *evaluation* half reported by default. One topic
search per class, written as a boolean query from what the topics are about (not from
the data). Each method ranks *every* item of the evaluation half, so average precision
sees all relevant items: methods with a hard filter put the query's matches first (in
their order) and the items the query rejects after them (in their order; such items are
never delivered, the order only says how close the scorer holds them). ``MAP in filter``
is the stricter view: only the matches are returned, a relevant item outside adds zero.

Methods: ``keyword`` (the query as hard filter, ranked by how many of its terms match,
ties in file order), ``tfidf`` (plain scikit-learn TF-IDF cosine with the query's words,
no filter), ``newsmon`` (the query as hard filter, ranked by core.relevance.scorer).
Simulated feedback: per search and draw, ``RESERVE`` stories the search found (what its
users see and label) are set aside at random; the first 10, 50 and 200 of them are the
labels (a user labeling more over time), and every other item is the evaluation set, the
same for every label count and for both methods. ``plain LR`` is scikit-learn's
LogisticRegression on TF-IDF of the whole half with the same labels, ranking everything
without a filter; ``newsmon+fb`` blends the search's feedback model with its query score.

A second, smaller check uses publisher-assigned categories of the feeds in
``../shared/corpus/feeds``: for each category with enough items, a search for its name.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.relevance.feedback import train_model
from core.relevance.matching import Document, matched_terms, matches, positive_terms
from core.relevance.query import parse_query
from core.relevance.scorer import Candidate, fit_scorer
from core.relevance.settings import RelevanceSettings

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "corpus" / "labeled" / "ag_news" / "test.csv"
FEEDS = ROOT.parent / "shared" / "corpus" / "feeds"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_COUNTS = (10, 50, 200)
DRAWS = 5
#: Stories set aside per draw as labels, the largest label count.
RESERVE = 200
TOP_K = 50

#: One search per AG News class (1 World, 2 Sports, 3 Business, 4 Sci/Tech): broad
#: OR-lists of words about each topic, as a user would write them (news-agency names
#: such as "reuters" are not topic words and are left out).
QUERIES = {
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


def ranking(scores: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """Item indexes best first: by score, ties in file order; ``first`` items ahead."""
    keys = [np.arange(len(scores)), -scores]
    if first is not None:
        keys.append(~first)
    return np.lexsort(keys)


def average_precision(order: np.ndarray, relevant: np.ndarray, returned: np.ndarray) -> float:
    """AP of a ranking cut to the ``returned`` items (a relevant item left out adds zero)."""
    hits = relevant[order[returned[order]]]
    if relevant.sum() == 0:
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / relevant.sum())


def precision_at(order: np.ndarray, relevant: np.ndarray, k: int) -> float:
    return float(relevant[order[:k]].sum() / k)


def load_ag_news(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    titles, texts, labels = [], [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for label, title, description in csv.reader(handle):
            titles.append(title)
            texts.append(description.replace("\\", " "))
            labels.append(int(label))
    return titles, texts, np.asarray(labels)


class Search:
    """One topic search over a corpus: the pieces every method needs."""

    def __init__(self, query_text: str, titles: Sequence[str], texts: Sequence[str]) -> None:
        self.query = parse_query(query_text)
        self.candidates = [Candidate(t, s) for t, s in zip(titles, texts, strict=True)]
        docs = [Document(title=t, text=s) for t, s in zip(titles, texts, strict=True)]
        self.matched = np.asarray([matches(self.query, d) for d in docs])
        self.keyword = np.asarray(
            [
                len(matched_terms(self.query, d)) if m else 0
                for d, m in zip(docs, self.matched, strict=True)
            ],
            dtype=float,
        )
        self.corpus = [c.text for c in self.candidates]

    def newsmon(self, settings: RelevanceSettings) -> tuple[np.ndarray, float, float]:
        """Query scores of every item; entries/s to fit + score, and to score only."""
        started = time.perf_counter()
        scorer = fit_scorer(self.query, settings, self.corpus)
        verdicts = scorer.score(self.candidates, now=NOW)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        scorer.score(self.candidates, now=NOW)
        scoring = time.perf_counter() - started
        n = len(verdicts)
        return np.asarray([v.score for v in verdicts]), n / elapsed, n / scoring

    def plain_tfidf(self) -> np.ndarray:
        vectorizer = TfidfVectorizer()
        matrix = vectorizer.fit_transform(self.corpus)
        words = " ".join(t.rstrip("*") for t in positive_terms(self.query))
        return np.asarray((matrix @ vectorizer.transform([words]).T).todense()).ravel()


def draw_reserve(pool: np.ndarray, relevant: np.ndarray, rng: random.Random) -> list[int]:
    """``RESERVE`` items of ``pool`` in random order whose first ``LABEL_COUNTS[0]`` hold
    two of each label at least (a model needs both kinds; redrawn until so)."""
    size = min(RESERVE, len(pool))
    while True:
        reserve = [int(i) for i in rng.sample(list(pool), size)]
        positives = int(relevant[reserve[: LABEL_COUNTS[0]]].sum())
        if 2 <= positives <= LABEL_COUNTS[0] - 2:
            return reserve


def run_ag_news(dev: bool) -> None:
    if not AG_NEWS.exists():
        print(f"skipped: {AG_NEWS} is absent")
        return
    titles, texts, labels = load_ag_news(AG_NEWS)
    half = [i for i in range(len(labels)) if i % 2 == (0 if dev else 1)]
    titles = [titles[i] for i in half]
    texts = [texts[i] for i in half]
    labels = labels[half]
    settings = RelevanceSettings()
    everything = np.ones(len(labels), dtype=bool)
    print(f"AG News, {'development' if dev else 'evaluation'} half: {len(labels)} items")
    rows: dict[str, list[tuple[float, ...]]] = {}
    speeds: list[tuple[float, float, float]] = []
    curves: dict[str, dict[int, list[float]]] = {"plain LR": {}, "newsmon+fb": {}}
    for topic, query_text in QUERIES.items():
        search = Search(query_text, titles, texts)
        relevant = labels == topic
        ours, fit_speed, score_speed = search.newsmon(settings)
        tfidf = search.plain_tfidf()
        delivered = search.matched & (ours >= settings.threshold)
        for name, scores, first, chosen in (
            ("keyword match", search.keyword, search.matched, search.matched),
            ("plain TF-IDF cosine", tfidf, None, tfidf > 0),
            ("newsmon query score", ours, search.matched, delivered),
        ):
            order = ranking(scores, first)
            rows.setdefault(name, []).append(
                (
                    average_precision(order, relevant, everything),
                    average_precision(order, relevant, everything if first is None else first),
                    precision_at(order, relevant, TOP_K),
                    float(relevant[chosen].mean()) if chosen.any() else 0.0,
                    float(relevant[chosen].sum() / relevant.sum()),
                )
            )
        feedback_speed = feedback_curve(search, ours, relevant, curves)
        speeds.append((fit_speed, score_speed, feedback_speed))
    print()
    print(f"| method | MAP | MAP in filter | P@{TOP_K} | precision | recall |")
    print("|---|---|---|---|---|---|")
    for name, values in rows.items():
        m = np.mean(values, axis=0)
        strict = "-" if name == "plain TF-IDF cosine" else f"{m[1]:.3f}"  # it has no filter
        print(f"| {name} | {m[0]:.3f} | {strict} | {m[2]:.3f} | {m[3]:.3f} | {m[4]:.3f} |")
    print(
        f"\n(MAP: every item ranked, the filter's matches first; precision/recall: of what "
        f"each delivers, newsmon at the default threshold {settings.threshold}, the others "
        f"every match)"
    )
    print(
        f"\nSimulated feedback ({DRAWS} draws per search, MAP over the 4 searches on the "
        f"items outside each draw's {RESERVE}-label reserve):\n"
    )
    print("| labels | plain LR | newsmon + feedback | change from the previous step |")
    print("|---|---|---|---|")
    previous = None
    for n in (0, *LABEL_COUNTS):
        lr = f"{np.mean(curves['plain LR'][n]):.4f}" if n else "-"
        mean = float(np.mean(curves["newsmon+fb"][n]))
        change = f"{mean - previous:+.4f}" if previous is not None else "-"
        print(f"| {n} | {lr} | {mean:.4f} | {change} |")
        previous = mean
    steps = np.diff([curves["newsmon+fb"][n] for n in (0, *LABEL_COUNTS)], axis=0)
    print(
        f"\n(newsmon + feedback rises at every step in {int((steps > 0).all(axis=0).sum())} "
        f"of {steps.shape[1]} search-draw curves; steps that lower MAP: "
        f"{int((steps < 0).sum())} of {steps.size})"
    )
    fit, score, feedback = np.median(speeds, axis=0)
    print(
        f"\nThroughput per search, {len(labels):,} entries (median of {len(speeds)} searches): "
        f"fit + score {fit:,.0f} entries/s, score only {score:,.0f} entries/s, "
        f"feedback model on top {feedback:,.0f} entries/s"
    )


def feedback_curve(
    search: Search,
    ours: np.ndarray,
    relevant: np.ndarray,
    curves: dict[str, dict[int, list[float]]],
) -> float:
    """Add this search's learning curves to ``curves``; entries/s of the feedback model."""
    pool = np.flatnonzero(search.matched)
    plain_matrix = TfidfVectorizer().fit_transform(search.corpus)
    speeds = []
    for draw in range(DRAWS):
        reserve = draw_reserve(pool, relevant, random.Random(f"{draw}"))
        held = np.ones(len(relevant), dtype=bool)
        held[reserve] = False
        matched = search.matched[held]
        curves["newsmon+fb"].setdefault(0, []).append(
            average_precision(ranking(ours[held], matched), relevant[held], held[held])
        )
        for n in LABEL_COUNTS:
            picked = reserve[:n]
            y = relevant[picked]
            plain = LogisticRegression().fit(plain_matrix[picked], y.astype(int))
            plain_scores = plain.predict_proba(plain_matrix)[:, 1]
            curves["plain LR"].setdefault(n, []).append(
                average_precision(ranking(plain_scores[held]), relevant[held], held[held])
            )
            model = train_model(
                [search.corpus[i] for i in picked], list(y), list(ours[picked]), search.corpus
            )
            assert model is not None
            started = time.perf_counter()
            probabilities = model.probabilities(search.corpus, ours)
            blended = np.asarray(
                [model.blend(q, p)[0] for q, p in zip(ours, probabilities, strict=True)]
            )
            speeds.append(len(blended) / (time.perf_counter() - started))
            curves["newsmon+fb"].setdefault(n, []).append(
                average_precision(ranking(blended[held], matched), relevant[held], held[held])
            )
    return float(np.median(speeds))


def run_feeds() -> None:
    """Publisher categories as labels: a search per frequent category, named by it."""
    import feedparser

    if not FEEDS.is_dir():
        print(f"skipped: {FEEDS} is absent")
        return
    items: list[tuple[str, str, set[str]]] = []
    for path in sorted(FEEDS.iterdir()):
        if path.suffix not in {".xml", ".rss", ".atom", ".rdf"}:
            continue
        parsed = feedparser.parse(path.read_bytes())
        for entry in parsed.entries:
            tags = {
                str(tag.get("term", "")).strip().lower()
                for tag in entry.get("tags", [])
                if tag.get("term")
            }
            if tags:
                items.append((entry.get("title", ""), entry.get("summary", "")[:2000], tags))
    counts = Counter(tag for _, _, tags in items for tag in tags)
    topics = [
        tag
        for tag, count in counts.most_common()
        if count >= 8 and tag.isalpha() and count <= len(items) // 2
    ][:8]
    if not topics:
        print("feeds: no category with enough items")
        return
    titles = [t for t, _, _ in items]
    texts = [s for _, s, _ in items]
    print(f"\nFeeds: {len(items)} categorized items, searches for: {', '.join(topics)}\n")
    print("| method | MAP |")
    print("|---|---|")
    results: dict[str, list[float]] = {}
    for topic in topics:
        search = Search(topic, titles, texts)
        relevant = np.asarray([topic in tags for _, _, tags in items])
        ours, _, _ = search.newsmon(RelevanceSettings())
        tfidf = search.plain_tfidf()
        everything = np.ones(len(relevant), dtype=bool)
        for name, scores, first in (
            ("keyword match", search.keyword, search.matched),
            ("plain TF-IDF cosine", tfidf, None),
            ("newsmon query score", ours, search.matched),
        ):
            order = ranking(scores, first)
            results.setdefault(name, []).append(average_precision(order, relevant, everything))
    for name, values in results.items():
        print(f"| {name} | {np.mean(values):.3f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dev", action="store_true", help="report the development half")
    args = parser.parse_args(argv)
    run_ag_news(args.dev)
    run_feeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
