"""Fitting a search's query vector on its stream: TF-IDF and naive Bayes self-training.

See :func:`core.relevance.scorer.fit_scorer` for how the pieces fit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

from core.relevance.learning import sigmoid
from core.relevance.matching import positive_terms
from core.relevance.query import Query, tokenize
from core.relevance.settings import RelevanceSettings

#: Entries of the stream needed on and off the query's words before self-training.
SELF_TRAINING_MIN_DOCS = 20
#: Share of the entries sharing query words taken as pseudo-relevant in the second fit.
SELF_TRAINING_SHARE = 0.3
#: Rounds of pseudo-labeling after the first model (2: +0.003 mean AP over 1).
SELF_TRAINING_ROUNDS = 2
#: Additive smoothing of the self-trained naive Bayes models.
SELF_TRAINING_ALPHA = 0.1


def _analyzer(text: str) -> list[str]:
    return tokenize(text)


def _unit(vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def query_terms(query: Query | None, settings: RelevanceSettings) -> dict[str, float]:
    """Normalized positive query terms (weight 1) and boosted terms (their weight)."""
    terms: dict[str, float] = {}
    for term in positive_terms(query) if query is not None else []:
        prefix = term.endswith("*")
        clean = " ".join(tokenize(term))
        if clean:
            terms[clean + ("*" if prefix else "")] = 1.0
    for term, weight in settings.boostedTerms.items():
        terms[term] = max(weight, terms.get(term, 0.0))
    return terms


#: A word no text holds, fitted beside a stream without a single word (empty, or only
#: punctuation and emoji), where scikit-learn would refuse an empty vocabulary: every
#: text then has an all-zero row, so nothing is similar to the query.
NO_WORDS = "zzznewsmonnowordszzz"


def fit_rows(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    """Fit ``vectorizer`` on ``texts`` and return their TF-IDF rows (one per text), also
    when the texts hold no word at all."""
    texts = list(texts)
    if any(tokenize(text) for text in texts):  # stops at the first text with a word
        return sp.csr_matrix(vectorizer.fit_transform(texts))
    return sp.csr_matrix(vectorizer.fit_transform([*texts, NO_WORDS]))[: len(texts)]


def fit_vectorizer(texts: Sequence[str]) -> TfidfVectorizer:
    """TF-IDF over normalized word tokens (sublinear tf), fitted on ``texts``."""
    vectorizer = new_vectorizer()
    fit_rows(vectorizer, texts)
    return vectorizer


def new_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, dtype=np.float64, lowercase=False)


def seed_vector(
    terms: dict[str, float], vectorizer: TfidfVectorizer
) -> tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    """The query's unit vector over the vocabulary, and each term's columns."""
    vocab: dict[str, int] = vectorizer.vocabulary_
    idf = vectorizer.idf_
    names = vectorizer.get_feature_names_out()
    vector = np.zeros(len(idf))
    term_columns: dict[str, np.ndarray[Any, Any]] = {}
    for term, weight in terms.items():
        if term.endswith("*"):
            stem = term[:-1]
            columns = [i for i, name in enumerate(names) if name.startswith(stem)]
        else:
            columns = [vocab[word] for word in term.split() if word in vocab]
        term_columns[term] = np.asarray(columns, dtype=np.int64)
        for column in columns:
            vector[column] += weight * idf[column] / len(columns)
    return _unit(vector), term_columns


def _count_terms(rows: sp.csr_matrix, seed: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """How many of the query's words each row contains."""
    present = rows.copy()
    present.data = np.ones_like(present.data)
    return np.asarray(present @ (seed > 0).astype(np.float64)).ravel()


def _fit_naive_bayes(
    rows: sp.csr_matrix, targets: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], float]:
    """A multinomial naive Bayes on TF-IDF rows, as the linear log-odds it is."""
    classifier = MultinomialNB(alpha=SELF_TRAINING_ALPHA)
    classifier.fit(rows, targets.astype(int))
    log_prob = classifier.feature_log_prob_
    prior = classifier.class_log_prior_
    return np.asarray(log_prob[1] - log_prob[0], dtype=np.float64), float(prior[1] - prior[0])


def _top_of(ranking: np.ndarray[Any, Any], count: int) -> np.ndarray[Any, Any]:
    """A mask of the ``count`` best of ``ranking``; ties broken by position (deterministic)."""
    order = np.lexsort((np.arange(len(ranking)), -ranking))
    targets = np.zeros(len(ranking), dtype=bool)
    targets[order[: max(1, count)]] = True
    return targets


def self_train(
    rows: sp.csr_matrix, seed: np.ndarray[Any, Any], on_topic: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], float] | None:
    """The self-trained log-odds weights and bias, or ``None`` when the stream has too
    few entries on or off the query's words."""
    hits = int(on_topic.sum())
    if min(hits, len(on_topic) - hits) < SELF_TRAINING_MIN_DOCS:
        return None
    coef, intercept = _fit_naive_bayes(rows, on_topic)
    first = sigmoid(np.asarray(rows @ coef).ravel() + intercept)
    counts = _count_terms(rows, seed)
    ranking = np.where(on_topic, first + counts / max(1.0, counts.max()), -np.inf)
    for _ in range(SELF_TRAINING_ROUNDS):
        targets = _top_of(ranking, int(SELF_TRAINING_SHARE * hits))
        coef, intercept = _fit_naive_bayes(rows, targets)
        ranking = np.where(on_topic, np.asarray(rows @ coef).ravel() + intercept, -np.inf)
    return coef, intercept
