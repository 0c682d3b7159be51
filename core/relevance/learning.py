"""Learning from a search's labels (pure; storage is in :mod:`core.relevance.feedback`).

A feedback model refines the query score instead of replacing it. The logit of a story's
query score is a fixed offset (weight 1), so the query's ranking is the starting point
and labels move stories up or down from it; words are L2-penalized corrections on top:

    refined score = sigmoid(logit(query score) + sum of word weights of the story)

Words are learned only once there are ``MIN_WORD_LABELS_PER_CLASS`` labels of each kind
and cross-validation on the labels themselves (``CV_FOLDS``-fold average precision of
the held-out labels) shows that they rank the labels better than the query score alone;
their number is bounded by ``FEATURES_PER_LABEL`` per label. Until then feedback only
calibrates: a logistic curve from the (refined) score to P(relevant), fitted on the
labels and used to place the search's threshold (:mod:`core.relevance.threshold`).

Measured on the AG News development half (bench/relevance.py, short queries, labels
from the query's matches): a free, unpenalized weight on the query's logit (the previous
model) grew to hundreds on nearly separable labels and left the ranking a step function
of the query score (+0.016 in-filter MAP at 200 labels); the fixed offset with words
chosen by cross-validation gave +0.022, and beat logistic regression on TF-IDF plus the
query cosine at 10, 50 and 200 labels.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.feature_extraction.text import TfidfVectorizer

#: Labels of each kind (relevant, not relevant) before a model is trained at all.
MIN_LABELS_PER_CLASS = 2
#: Labels of each kind (relevant, not relevant) before labels calibrate the threshold.
MIN_CALIBRATION_LABELS_PER_CLASS = 5
#: Labels of each kind before words may be learned (and cross-validation can judge
#: them: every fold needs both kinds). 20 kept words out at 50 labels drawn from the
#: query's matches (15 negatives) on the development half, where they helped.
MIN_WORD_LABELS_PER_CLASS = 5
#: Folds of the cross-validation that decides whether words help, and how much penalty.
CV_FOLDS = 5
#: Inverse L2 penalties tried for the word weights (the one with the best held-out AP).
REGULARIZATION_GRID = (3.0, 10.0, 30.0, 100.0)
#: Most words per label (the words of the labeled stories, most frequent among them
#: first, then the less rare in the stream). On the development half 20 did as well as
#: no bound, 10 lost up to 0.001 MAP, 1 and 3 lost 0.003-0.013.
FEATURES_PER_LABEL = 20
#: Most words a model keeps, however many labels there are.
MAX_MODEL_FEATURES = 20_000
#: Strength of the calibration's pull towards "the score is already a probability"
#: (slope 1, intercept 0): the variance of that prior.
CALIBRATION_PRIOR_VARIANCE = 1.0
#: Query scores are clipped this far from 0 and 1 before their logit is taken.
QUERY_SCORE_EPSILON = 1e-4
#: Version of the stored JSON layout (3: query as fixed offset, words by cross-validation,
#: calibration); older layouts are never loaded and the next retrain replaces them.
MODEL_FORMAT = 3


def logit(scores: Sequence[float] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The logit of scores in [0, 1] (clipped ``QUERY_SCORE_EPSILON`` from the ends)."""
    clipped = np.clip(
        np.asarray(scores, dtype=np.float64), QUERY_SCORE_EPSILON, 1.0 - QUERY_SCORE_EPSILON
    )
    return np.asarray(np.log(clipped / (1.0 - clipped)))


def sigmoid(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(values, -50.0, 50.0))))


def average_precision(scores: np.ndarray[Any, Any], relevant: np.ndarray[Any, Any]) -> float:
    """AP of ``scores`` for the boolean ``relevant`` (ties in input order)."""
    hits = relevant[np.argsort(-scores, kind="stable")]
    if not hits.any():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


@dataclass(frozen=True)
class Calibration:
    """P(relevant) = sigmoid(slope * logit(score) + intercept), from ``labels`` labels."""

    slope: float
    intercept: float
    labels: int

    def probability(self, scores: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return sigmoid(self.slope * logit(scores) + self.intercept)


@dataclass(frozen=True)
class FeedbackModel:
    """A search's trained feedback, as stored (plain arrays, never pickled objects).

    Parameters:
      vocabulary, coef: the learned words and their weights (empty: calibration only);
        a story's features are its TF-IDF row over the search's stream restricted to them.
      calibration: the label-fitted curve to P(relevant), or ``None`` (too few labels).
      label_count, relevant: labels trained on, and how many said relevant.
      regularization: the penalty chosen by cross-validation (``None``: no words).
      cv_query_ap, cv_words_ap: held-out AP of the labels by query score alone and with
        words (``None`` when not measured).
      version: its row in ``relevanceModels``.
    """

    vocabulary: tuple[str, ...]
    coef: np.ndarray[Any, Any]
    calibration: Calibration | None
    label_count: int
    relevant: int
    regularization: float | None = None
    cv_query_ap: float | None = None
    cv_words_ap: float | None = None
    version: int = 0

    @property
    def uses_words(self) -> bool:
        return len(self.vocabulary) > 0

    @property
    def stage(self) -> str:
        """``words`` (labels reorder stories) or ``calibration`` (they set the threshold)."""
        return "words" if self.uses_words else "calibration"

    def columns(
        self, vectorizer: TfidfVectorizer
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Where the model's words are in ``vectorizer`` and their weights (words the
        stream no longer has are left out)."""
        vocab: dict[str, int] = vectorizer.vocabulary_
        pairs = [
            (vocab[w], c) for w, c in zip(self.vocabulary, self.coef, strict=True) if w in vocab
        ]
        columns = np.asarray([p[0] for p in pairs], dtype=np.int64)
        return columns, np.asarray([p[1] for p in pairs], dtype=np.float64)

    def word_logits(self, rows: sp.csr_matrix, vectorizer: TfidfVectorizer) -> np.ndarray[Any, Any]:
        """The words' part of each row's logit (TF-IDF ``rows`` of ``vectorizer``)."""
        if not self.uses_words:
            return np.zeros(rows.shape[0])
        columns, weights = self.columns(vectorizer)
        dense = np.zeros(rows.shape[1])
        dense[columns] = weights
        return np.asarray(rows @ dense, dtype=np.float64).ravel()

    def to_bytes(self) -> bytes:
        calibration = self.calibration
        document = {
            "format": MODEL_FORMAT,
            "vocabulary": list(self.vocabulary),
            "coef": [round(float(x), 6) for x in self.coef],
            "calibration": None
            if calibration is None
            else [calibration.slope, calibration.intercept, calibration.labels],
            "labelCount": self.label_count,
            "relevant": self.relevant,
            "regularization": self.regularization,
            "cv": [self.cv_query_ap, self.cv_words_ap],
        }
        return zlib.compress(json.dumps(document, separators=(",", ":")).encode())

    @classmethod
    def from_bytes(cls, data: bytes, version: int = 0) -> FeedbackModel:
        """The stored model; ``ValueError`` for another layout (never pickle, never eval)."""
        document = json.loads(zlib.decompress(data))
        if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
            found = document.get("format") if isinstance(document, dict) else None
            raise ValueError(f"unknown relevance model format {found!r}")
        raw = document["calibration"]
        cv_query, cv_words = document["cv"]
        return cls(
            vocabulary=tuple(str(w) for w in document["vocabulary"]),
            coef=np.asarray(document["coef"], dtype=np.float64),
            calibration=None
            if raw is None
            else Calibration(float(raw[0]), float(raw[1]), int(raw[2])),
            label_count=int(document["labelCount"]),
            relevant=int(document["relevant"]),
            regularization=document["regularization"],
            cv_query_ap=cv_query,
            cv_words_ap=cv_words,
            version=version,
        )


def _fit_words(
    rows: sp.csr_matrix, offset: np.ndarray[Any, Any], targets: np.ndarray[Any, Any], c: float
) -> np.ndarray[Any, Any]:
    """Word weights of ``sigmoid(offset + bias + rows @ w)`` by class-balanced logistic
    loss with penalty ``|w|^2 / 2c``; the offset's weight is fixed at 1 (scikit-learn's
    LogisticRegression cannot hold a feature's weight fixed, so the loss is written out).
    The bias is fitted and dropped: it only calibrates, which the calibration does."""
    y = targets.astype(np.float64)
    positives = float(y.sum())
    balance = np.where(targets, len(y) / (2.0 * positives), len(y) / (2.0 * (len(y) - positives)))

    def loss(theta: np.ndarray[Any, Any]) -> tuple[float, np.ndarray[Any, Any]]:
        bias, w = theta[0], theta[1:]
        margin = offset + bias + rows @ w
        gradient = balance * (sigmoid(margin) - y)
        value = float(np.sum(balance * (np.logaddexp(0.0, margin) - y * margin)))
        value += float(w @ w) / (2.0 * c)
        return value, np.concatenate([[gradient.sum()], rows.T @ gradient + w / c])

    result = minimize(loss, np.zeros(rows.shape[1] + 1), jac=True, method="L-BFGS-B")
    return np.asarray(result.x[1:], dtype=np.float64)


def _folds(targets: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    """Stratified folds, deterministic: the i-th label of each kind goes to fold i % k."""
    positives, negatives = np.flatnonzero(targets), np.flatnonzero(~targets)
    return [
        np.concatenate([positives[i::CV_FOLDS], negatives[i::CV_FOLDS]]) for i in range(CV_FOLDS)
    ]


def _held_out(
    rows: sp.csr_matrix, offset: np.ndarray[Any, Any], targets: np.ndarray[Any, Any], c: float
) -> np.ndarray[Any, Any]:
    """Each label's word logit from a model trained on the other folds."""
    logits = np.zeros(len(targets))
    for fold in _folds(targets):
        train = np.setdiff1d(np.arange(len(targets)), fold)
        logits[fold] = rows[fold] @ _fit_words(rows[train], offset[train], targets[train], c)
    return logits


def _select_words(
    rows: sp.csr_matrix, idf: np.ndarray[Any, Any], labels: int
) -> np.ndarray[Any, Any]:
    """Columns of the words the labeled rows contain: most frequent among them first, then
    the less rare in the stream; at most ``FEATURES_PER_LABEL`` per label."""
    present = np.asarray((rows != 0).sum(axis=0)).ravel()
    columns = np.flatnonzero(present)
    order = np.lexsort((columns, idf[columns], -present[columns]))
    return np.sort(columns[order][: min(FEATURES_PER_LABEL * labels, MAX_MODEL_FEATURES)])


def _calibrate(refined_logits: np.ndarray[Any, Any], targets: np.ndarray[Any, Any]) -> Calibration:
    """Logistic curve from the refined logit to P(relevant), pulled towards the identity
    (``CALIBRATION_PRIOR_VARIANCE``) so a few labels cannot swing it far; slope >= 0."""
    y = targets.astype(np.float64)
    prior = CALIBRATION_PRIOR_VARIANCE

    def loss(theta: np.ndarray[Any, Any]) -> tuple[float, np.ndarray[Any, Any]]:
        slope, intercept = theta
        margin = slope * refined_logits + intercept
        gradient = sigmoid(margin) - y
        value = float(np.sum(np.logaddexp(0.0, margin) - y * margin))
        value += ((slope - 1.0) ** 2 + intercept**2) / (2.0 * prior)
        grad = [
            gradient @ refined_logits + (slope - 1.0) / prior,
            gradient.sum() + intercept / prior,
        ]
        return value, np.asarray(grad)

    result = minimize(
        loss,
        np.asarray([1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None), (None, None)],
    )
    return Calibration(float(result.x[0]), float(result.x[1]), len(targets))


def train_model(
    texts: Sequence[str],
    labels: Sequence[bool],
    query_scores: Sequence[float],
    vectorizer: TfidfVectorizer,
    *,
    matched: Sequence[bool] | None = None,
) -> FeedbackModel | None:
    """Train on labeled ``texts`` with their query scores; ``vectorizer`` is TF-IDF fitted
    on the search's stream (as its scorer's is). ``matched`` says which labeled stories
    passed the query (suggestions did not): only those calibrate the threshold.
    ``None`` while either kind has fewer than ``MIN_LABELS_PER_CLASS`` labels.
    Deterministic."""
    targets = np.asarray(labels, dtype=bool)
    positives = int(targets.sum())
    if min(positives, len(targets) - positives) < MIN_LABELS_PER_CLASS:
        return None
    offset = logit(query_scores)
    rows = sp.csr_matrix(vectorizer.transform(list(texts)))
    vocabulary: tuple[str, ...] = ()
    coef = np.zeros(0)
    word_logits = np.zeros(len(targets))
    best_c: float | None = None
    query_ap = words_ap = None
    if min(positives, len(targets) - positives) >= MIN_WORD_LABELS_PER_CLASS:
        columns = _select_words(rows, np.asarray(vectorizer.idf_), len(targets))
        chosen = sp.csr_matrix(rows[:, columns])
        query_ap = average_precision(offset, targets)
        best_ap, best_logits = query_ap, word_logits
        for c in REGULARIZATION_GRID:
            held = _held_out(chosen, offset, targets, c)
            ap = average_precision(offset + held, targets)
            if ap > best_ap:
                best_c, best_ap, best_logits = c, ap, held
        words_ap = best_ap
        if best_c is not None:
            weights = _fit_words(chosen, offset, targets, best_c)
            keep = weights != 0.0
            names = vectorizer.get_feature_names_out()
            vocabulary = tuple(str(names[i]) for i in columns[keep])
            coef = weights[keep]
            word_logits = best_logits  # held-out, so the calibration sees honest scores
    in_query = np.ones(len(targets), dtype=bool) if matched is None else np.asarray(matched, bool)
    calibration = None
    calibrating = targets[in_query]
    if min(int(calibrating.sum()), int((~calibrating).sum())) >= MIN_CALIBRATION_LABELS_PER_CLASS:
        calibration = _calibrate((offset + word_logits)[in_query], calibrating)
    return FeedbackModel(
        vocabulary=vocabulary,
        coef=coef,
        calibration=calibration,
        label_count=len(targets),
        relevant=positives,
        regularization=best_c,
        cv_query_ap=None if query_ap is None else round(query_ap, 4),
        cv_words_ap=None if words_ap is None else round(words_ap, 4),
    )
