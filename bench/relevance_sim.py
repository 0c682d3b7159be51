"""A search fitted as production fits it, for bench/relevance.py.

The labeled items arrive in file order, ``BATCH`` per run. Each run fits the search's
scorer on the run's entries plus the newest entries before them, at most
``FIT_CORPUS_SIZE`` in all (as ``score_batch`` does in a run), and scores the run's
entries: the query's matches as stories, the others as possible suggestions. A feedback
model trained on labels is then applied run by run to the same fits (the fit of a run
does not depend on the model; its threshold and refined scores do), as a run after the
labels would apply it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.relevance.learning import FeedbackModel, train_model
from core.relevance.matching import Document, matched_terms, matches, positive_terms
from core.relevance.query import parse_query
from core.relevance.scorer import FIT_CORPUS_SIZE, Candidate, QueryScorer, fit_scorer
from core.relevance.self_training import fit_vectorizer
from core.relevance.settings import RelevanceSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: Entries per simulated run.
BATCH = 100
#: Inverse penalty of the LR + cosine baseline (scikit-learn's default; 10 was no better
#: on the development half).
BASELINE_C = 1.0


@dataclass(frozen=True)
class Corpus:
    titles: list[str]
    texts: list[str]
    labels: np.ndarray[Any, Any]

    @property
    def documents(self) -> list[str]:
        return [f"{t}\n{s}" for t, s in zip(self.titles, self.texts, strict=True)]


def load_ag_news(path: Path, parity: int) -> Corpus:
    """The rows of AG News whose index has ``parity`` (0: development, 1: evaluation)."""
    titles, texts, labels = [], [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for i, (label, title, description) in enumerate(csv.reader(handle)):
            if i % 2 == parity:
                titles.append(title)
                texts.append(description.replace("\\", " "))
                labels.append(int(label))
    return Corpus(titles, texts, np.asarray(labels))


@dataclass(frozen=True)
class Scored:
    """Every item's score, the threshold of its run, and whether it was suggested."""

    scores: np.ndarray[Any, Any]
    thresholds: np.ndarray[Any, Any]
    suggested: np.ndarray[Any, Any]
    seconds: float


class Search:
    """One topic search over a corpus arriving run by run."""

    def __init__(self, query_text: str, corpus: Corpus, settings: RelevanceSettings) -> None:
        self.query = parse_query(query_text)
        self.corpus = corpus
        self.documents = corpus.documents
        docs = [Document(t, s) for t, s in zip(corpus.titles, corpus.texts, strict=True)]
        self.matched = np.asarray([matches(self.query, d) for d in docs])
        self.keyword = np.asarray(
            [
                len(matched_terms(self.query, d)) if m else 0
                for d, m in zip(docs, self.matched, strict=True)
            ],
            dtype=float,
        )
        self.candidates = [
            Candidate(t, s, matched=bool(m))
            for t, s, m in zip(corpus.titles, corpus.texts, self.matched, strict=True)
        ]
        self.runs: list[tuple[int, int, QueryScorer, sp.csr_matrix]] = []
        started = time.perf_counter()
        for start in range(0, len(self.documents), BATCH):
            end = min(len(self.documents), start + BATCH)
            earlier = self.documents[max(0, end - FIT_CORPUS_SIZE) : start][::-1]
            scorer = fit_scorer(self.query, settings, [*self.documents[start:end], *earlier])
            assert scorer.fit.corpus_rows is not None
            self.runs.append((start, end, scorer, scorer.fit.corpus_rows[: end - start]))
        self.fit_seconds = time.perf_counter() - started
        self.query_only = self.score(None)

    def score(self, model: FeedbackModel | None) -> Scored:
        """Every item scored by its run's fit with ``model``."""
        n = len(self.documents)
        scores, thresholds, suggested = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
        started = time.perf_counter()
        for start, end, scorer, rows in self.runs:
            run = scorer.with_model(model)
            verdicts = run.score(self.candidates[start:end], now=NOW, rows=rows)
            scores[start:end] = [v.score for v in verdicts]
            thresholds[start:end] = run.threshold.value
            suggested[start:end] = [v.suggested for v in verdicts]
        return Scored(scores, thresholds, suggested, time.perf_counter() - started)

    def train(self, picked: Sequence[int], relevant: np.ndarray[Any, Any]) -> FeedbackModel | None:
        """The feedback model of labels on ``picked``, trained as ``retrain`` does: query
        scores as stored, TF-IDF of the newest stream and the labeled texts."""
        texts = [self.documents[i] for i in picked]
        stream = self.documents[-FIT_CORPUS_SIZE:]
        return train_model(
            texts,
            list(relevant[list(picked)]),
            list(self.query_only.scores[list(picked)]),
            fit_vectorizer([*stream, *texts]),
            matched=list(self.matched[list(picked)]),
            stream=stream,
        )


class LogisticBaseline:
    """Logistic regression on TF-IDF (scikit-learn defaults) plus the cosine between each
    item and the query's words, trained on the same labels; no labels: the cosine."""

    def __init__(self, search: Search) -> None:
        vectorizer = TfidfVectorizer()
        self.matrix = sp.csr_matrix(vectorizer.fit_transform(search.documents))
        words = " ".join(t.rstrip("*") for t in positive_terms(search.query))
        self.cosine = np.asarray(self.matrix @ vectorizer.transform([words]).T.toarray()).ravel()
        self.features = sp.csr_matrix(sp.hstack([self.matrix, self.cosine[:, None]]))

    def scores(self, picked: Sequence[int], relevant: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if not picked:
            return self.cosine
        model = LogisticRegression(C=BASELINE_C, max_iter=1000)
        model.fit(self.features[list(picked)], relevant[list(picked)].astype(int))
        return np.asarray(model.decision_function(self.features))


def in_filter_ap(
    scores: np.ndarray[Any, Any],
    matched: np.ndarray[Any, Any],
    relevant: np.ndarray[Any, Any],
    kept: np.ndarray[Any, Any],
) -> float:
    """AP of the query's matches among ``kept`` ranked by ``scores`` (ties in file order);
    a relevant item the query did not match counts as never found."""
    index = np.flatnonzero(matched & kept)
    order = index[np.lexsort((index, -scores[index]))]
    total = int((relevant & kept).sum())
    if total == 0:
        return 0.0
    hits = relevant[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / total)


def f1(delivered: np.ndarray[Any, Any], relevant: np.ndarray[Any, Any]) -> float:
    hits = int((delivered & relevant).sum())
    if hits == 0:
        return 0.0
    precision, recall = hits / int(delivered.sum()), hits / int(relevant.sum())
    return 2 * precision * recall / (precision + recall)


def long_articles(
    corpus: Corpus, count: int, length: int
) -> tuple[list[Candidate], np.ndarray[Any, Any]]:
    """``count`` articles of about ``length`` characters, with their class: an item's
    title and its text followed by the texts of the next items of its class (for
    throughput only), classes interleaved."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(corpus.labels):
        by_class.setdefault(int(label), []).append(i)
    articles, classes = [], []
    for label, members in by_class.items():
        for j, i in enumerate(members):
            body: list[str] = []
            k = j
            while sum(len(part) + 1 for part in body) < length:
                body.append(corpus.texts[members[k % len(members)]])
                k += 1
            articles.append(Candidate(corpus.titles[i], " ".join(body)[:length]))
            classes.append(label)
    order = np.argsort(np.arange(len(articles)) % (len(articles) // len(by_class)), kind="stable")
    return [articles[i] for i in order[:count]], np.asarray(classes)[order[:count]]
