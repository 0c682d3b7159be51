"""Learning from a search's labels (pure; storage is in :mod:`core.relevance.feedback`).

A feedback model refines the query score instead of replacing it. The logit of a story's
query score is a fixed offset (weight 1), so the query's ranking is the starting point
and labels move stories up or down from it; words are corrections on top:

    refined score = sigmoid(logit(query score) + sum of word weights of the story)

The words come in two parts, each used only when ``CV_FOLDS``-fold cross-validation on
the labels themselves (average precision of the held-out labels) shows it ranks them
better than what it adds to:

- *stream words*: a naive Bayes model started from the labels and fitted again, twice,
  on the search's unlabeled stream with the labels it gives it (semi-supervised, as the
  scorer's self-training is, but from the user's labels instead of the query's words),
  so a few labels reach the words of thousands of entries; its log-odds, scaled by a
  weight chosen from ``STREAM_WEIGHT_GRID``;
- *label words*: L2-penalized, class-balanced logistic weights of the labeled stories'
  own words, fitted on top of the query and the stream words.

Words are learned only once there are ``MIN_WORD_LABELS_PER_CLASS`` labels of each kind;
each part keeps at most ``FEATURES_PER_LABEL`` words per label. Until then feedback only
calibrates: a logistic curve from the (refined) score to P(relevant), fitted on the
labels and used to place the search's threshold (:mod:`core.relevance.threshold`).

Measured on the AG News development half (bench/relevance.py, short queries): a free,
unpenalized weight on the query's logit (an earlier model) grew to hundreds on nearly
separable labels and left the ranking a step function of the query score (+0.016
in-filter MAP at 200 labels from the query's matches); the fixed offset with label words
gave +0.022; the stream words (with scores kept to 6 decimals) added +0.004 at 50
labels from the matches, nothing at 200 (-0.0005), and +0.006 to +0.007 at 50 and 200
random labels.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

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
#: Inverse L2 penalties tried for the label words (the one with the best held-out AP).
REGULARIZATION_GRID = (3.0, 10.0, 30.0, 100.0)
#: Weights tried for the stream words' log-odds (the one with the best held-out AP; on a
#: tie, as on labels that every weight separates, the first: the naive Bayes' own scale,
#: then the nearer to it).
STREAM_WEIGHT_GRID = (1.0, 0.3, 3.0, 0.1, 10.0, 0.03)
#: Weight of each stream entry, relative to one label, in the semi-supervised fits (on
#: the development half 3 beat 0.3 and 1 and did as well as 10).
STREAM_ENTRY_WEIGHT = 3.0
#: Rounds of the stream words' semi-supervised fit after the labels-only one.
STREAM_ROUNDS = 2
#: Additive smoothing of the stream words' naive Bayes (1.0 lost it all its gain).
STREAM_SMOOTHING = 0.1
#: Most words per label of each part (label words: the labeled stories' words, most
#: frequent among them first, then the less rare in the stream; stream words: the
#: largest weights). On the development half 20 did about as well as no bound for the
#: label words (10 lost up to 0.001 MAP) and lost 0.001-0.005 for the stream words; 5
#: stream words per label lost most of their gain.
FEATURES_PER_LABEL = 20
#: Most words a model keeps, however many labels there are.
MAX_MODEL_FEATURES = 20_000
#: Strength of the calibration's pull towards "the score is already a probability"
#: (slope 1, intercept 0): the variance of that prior.
CALIBRATION_PRIOR_VARIANCE = 1.0
#: Query scores are clipped this far from 0 and 1 before their logit is taken.
QUERY_SCORE_EPSILON = 1e-4
#: Version of the stored JSON layout (4: query as fixed offset, stream and label words by
#: cross-validation, calibration); older layouts are never loaded and the next retrain
#: replaces them.
MODEL_FORMAT = 4


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
      suggest_coef: the weights of the same words for entries the query missed (label
        words fitted on the query score alone: the stream words learn what tells the
        query's matches apart, which rates too many entries outside them); ``None``:
        ``coef``.
      calibration: the label-fitted curve to P(relevant), or ``None`` (too few labels).
      label_count, relevant: labels trained on, and how many said relevant.
      regularization: the label words' penalty chosen by cross-validation (``None``: no
        label words).
      stream_weight: the stream words' weight chosen by cross-validation (``None``: no
        stream words).
      cv_query_ap, cv_words_ap: held-out AP of the labels by query score alone and with
        the words kept (``None`` when not measured).
      version: its row in ``relevanceModels``.
    """

    vocabulary: tuple[str, ...]
    coef: np.ndarray[Any, Any]
    calibration: Calibration | None
    label_count: int
    relevant: int
    regularization: float | None = None
    stream_weight: float | None = None
    suggest_coef: np.ndarray[Any, Any] | None = None
    cv_query_ap: float | None = None
    cv_words_ap: float | None = None
    version: int = 0

    @property
    def uses_words(self) -> bool:
        return len(self.vocabulary) > 0

    @property
    def suggests(self) -> bool:
        """Whether entries the query missed can be rated (label words were learned)."""
        return bool(np.any(self.coef if self.suggest_coef is None else self.suggest_coef))

    @property
    def stage(self) -> str:
        """``words`` (labels reorder stories) or ``calibration`` (they set the threshold)."""
        return "words" if self.uses_words else "calibration"

    def columns(
        self, vectorizer: TfidfVectorizer, *, suggesting: bool = False
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Where the model's words are in ``vectorizer`` and their weights for the query's
        matches (``suggesting``: for entries it missed); words the stream no longer has
        are left out."""
        vocab: dict[str, int] = vectorizer.vocabulary_
        coef = self.suggest_coef if suggesting and self.suggest_coef is not None else self.coef
        pairs = [(vocab[w], c) for w, c in zip(self.vocabulary, coef, strict=True) if w in vocab]
        columns = np.asarray([p[0] for p in pairs], dtype=np.int64)
        return columns, np.asarray([p[1] for p in pairs], dtype=np.float64)

    def to_bytes(self) -> bytes:
        calibration = self.calibration
        document = {
            "format": MODEL_FORMAT,
            "vocabulary": list(self.vocabulary),
            "coef": [round(float(x), 6) for x in self.coef],
            "suggestCoef": None
            if self.suggest_coef is None
            else [round(float(x), 6) for x in self.suggest_coef],
            "calibration": None
            if calibration is None
            else [calibration.slope, calibration.intercept, calibration.labels],
            "labelCount": self.label_count,
            "relevant": self.relevant,
            "regularization": self.regularization,
            "streamWeight": self.stream_weight,
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
            suggest_coef=None
            if document["suggestCoef"] is None
            else np.asarray(document["suggestCoef"], dtype=np.float64),
            calibration=None
            if raw is None
            else Calibration(float(raw[0]), float(raw[1]), int(raw[2])),
            label_count=int(document["labelCount"]),
            relevant=int(document["relevant"]),
            regularization=document["regularization"],
            stream_weight=document["streamWeight"],
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
    """Each label's label-word logit from a model trained on the other folds."""
    logits = np.zeros(len(targets))
    for fold in _folds(targets):
        train = np.setdiff1d(np.arange(len(targets)), fold)
        logits[fold] = rows[fold] @ _fit_words(rows[train], offset[train], targets[train], c)
    return logits


def _stream_log_odds(
    rows: sp.csr_matrix, targets: np.ndarray[Any, Any], stream: sp.csr_matrix
) -> np.ndarray[Any, Any]:
    """Per column, the log-odds of relevant of a naive Bayes fitted on the labeled
    ``rows``, then ``STREAM_ROUNDS`` times again on them plus every ``stream`` row, split
    between the two kinds by the previous model's probability (each half weighted by
    ``STREAM_ENTRY_WEIGHT`` and that probability)."""
    y = targets.astype(np.int64)
    model = MultinomialNB(alpha=STREAM_SMOOTHING).fit(rows, y)
    if stream.shape[0]:
        both = sp.vstack([rows, stream, stream]).tocsr()
        kinds = np.concatenate(
            [y, np.ones(stream.shape[0], np.int64), np.zeros(stream.shape[0], np.int64)]
        )
        for _ in range(STREAM_ROUNDS):
            relevant = model.predict_proba(stream)[:, 1]
            weights = np.concatenate(
                [
                    np.ones(len(y)),
                    STREAM_ENTRY_WEIGHT * relevant,
                    STREAM_ENTRY_WEIGHT * (1 - relevant),
                ]
            )
            model = MultinomialNB(alpha=STREAM_SMOOTHING).fit(both, kinds, sample_weight=weights)
    log_prob = model.feature_log_prob_
    return np.asarray(log_prob[1] - log_prob[0], dtype=np.float64)


def _strongest(weights: np.ndarray[Any, Any], count: int) -> np.ndarray[Any, Any]:
    """``weights`` with all but the ``count`` largest in magnitude set to 0 (ties: the
    lower column first, so training stays deterministic)."""
    kept = np.zeros_like(weights)
    order = np.lexsort((np.arange(len(weights)), -np.abs(weights)))[:count]
    kept[order] = weights[order]
    return kept


def _choose(
    grid: Sequence[float],
    held_of: Callable[[float], np.ndarray[Any, Any]],
    offset: np.ndarray[Any, Any],
    targets: np.ndarray[Any, Any],
    to_beat: float,
) -> tuple[float | None, float, np.ndarray[Any, Any]]:
    """The value of ``grid`` whose held-out logits (``held_of``) added to ``offset`` rank
    the labels best (``None``: none beats ``to_beat``; ties: the first), the AP reached
    and each label's held-out logit with it."""
    best: float | None = None
    best_ap, best_held = to_beat, np.zeros(len(targets))
    for value in grid:
        held = held_of(value)
        ap = average_precision(offset + held, targets)
        if ap > best_ap:
            best, best_ap, best_held = value, ap, held
    return best, best_ap, best_held


def _stream_words(
    rows: sp.csr_matrix,
    offset: np.ndarray[Any, Any],
    targets: np.ndarray[Any, Any],
    stream: sp.csr_matrix,
    to_beat: float,
) -> tuple[float | None, np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    """The stream words' weight chosen by cross-validation (``None``: they do not beat
    ``to_beat``, the held-out AP of ``offset`` alone), their weights per column, each
    label's held-out logit from them, and the held-out AP reached."""
    folds = [
        (fold, _stream_log_odds(rows[train], targets[train], stream))
        for fold in _folds(targets)
        for train in [np.setdiff1d(np.arange(len(targets)), fold)]
    ]

    def held_of(weight: float) -> np.ndarray[Any, Any]:
        held = np.zeros(len(targets))
        for fold, log_odds in folds:
            held[fold] = weight * (rows[fold] @ log_odds)
        return held

    weight, ap, held = _choose(STREAM_WEIGHT_GRID, held_of, offset, targets, to_beat)
    if weight is None:
        return None, np.zeros(rows.shape[1]), held, ap
    log_odds = _stream_log_odds(rows, targets, stream)
    return weight, _strongest(weight * log_odds, _word_bound(len(targets))), held, ap


def _label_words(
    rows: sp.csr_matrix, offset: np.ndarray[Any, Any], targets: np.ndarray[Any, Any], to_beat: float
) -> tuple[float | None, float, np.ndarray[Any, Any]]:
    """The label words' penalty chosen by cross-validation (``None``: none beats
    ``to_beat``, the held-out AP of ``offset`` alone), the AP reached and each label's
    held-out logit from them."""
    return _choose(
        REGULARIZATION_GRID,
        lambda c: _held_out(rows, offset, targets, c),
        offset,
        targets,
        to_beat,
    )


def _select_words(
    rows: sp.csr_matrix, idf: np.ndarray[Any, Any], labels: int
) -> np.ndarray[Any, Any]:
    """Columns of the words the labeled rows contain: most frequent among them first, then
    the less rare in the stream; at most ``FEATURES_PER_LABEL`` per label."""
    present = np.asarray((rows != 0).sum(axis=0)).ravel()
    columns = np.flatnonzero(present)
    order = np.lexsort((columns, idf[columns], -present[columns]))
    return np.sort(columns[order][: _word_bound(labels)])


def _word_bound(labels: int) -> int:
    """Most words of each part for ``labels`` labels."""
    return min(FEATURES_PER_LABEL * labels, MAX_MODEL_FEATURES)


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
    stream: Sequence[str] = (),
) -> FeedbackModel | None:
    """Train on labeled ``texts`` with their query scores; ``vectorizer`` is TF-IDF fitted
    on the search's stream (as its scorer's is) and ``stream`` the stream's texts, which
    the stream words learn from. ``matched`` says which labeled stories passed the query
    (suggestions did not): only those calibrate the threshold. ``None`` while either kind
    has fewer than ``MIN_LABELS_PER_CLASS`` labels. Deterministic."""
    targets = np.asarray(labels, dtype=bool)
    positives = int(targets.sum())
    if min(positives, len(targets) - positives) < MIN_LABELS_PER_CLASS:
        return None
    offset = logit(query_scores)
    rows = sp.csr_matrix(vectorizer.transform(list(texts)))
    weights = np.zeros(rows.shape[1])
    suggest: np.ndarray[Any, Any] | None = None  # for entries the query missed; None: weights
    held = np.zeros(len(targets))  # held-out word logits, so the calibration sees honest scores
    stream_weight = best_c = None
    query_ap = words_ap = None
    if min(positives, len(targets) - positives) >= MIN_WORD_LABELS_PER_CLASS:
        query_ap = average_precision(offset, targets)
        columns = _select_words(rows, np.asarray(vectorizer.idf_), len(targets))
        chosen = sp.csr_matrix(rows[:, columns])
        stream_rows = (
            sp.csr_matrix(vectorizer.transform(list(stream)))
            if stream
            else sp.csr_matrix((0, rows.shape[1]))
        )
        stream_weight, weights, held, words_ap = _stream_words(
            rows, offset, targets, stream_rows, query_ap
        )
        best_c, words_ap, label_held = _label_words(chosen, offset + held, targets, words_ap)
        if best_c is not None:
            weights[columns] += _fit_words(chosen, offset + rows @ weights, targets, best_c)
            held = held + label_held
        if stream_weight is not None:
            c, _, _ = _label_words(chosen, offset, targets, query_ap)
            suggest = np.zeros(rows.shape[1])
            if c is not None:
                suggest[columns] = _fit_words(chosen, offset, targets, c)
    kept = np.flatnonzero(weights if suggest is None else (weights != 0) | (suggest != 0))
    names = vectorizer.get_feature_names_out()
    in_query = np.ones(len(targets), dtype=bool) if matched is None else np.asarray(matched, bool)
    calibration = None
    calibrating = targets[in_query]
    if min(int(calibrating.sum()), int((~calibrating).sum())) >= MIN_CALIBRATION_LABELS_PER_CLASS:
        calibration = _calibrate((offset + held)[in_query], calibrating)
    return FeedbackModel(
        vocabulary=tuple(str(names[i]) for i in kept),
        coef=weights[kept],
        suggest_coef=None if suggest is None else suggest[kept],
        calibration=calibration,
        label_count=len(targets),
        relevant=positives,
        regularization=best_c,
        stream_weight=stream_weight,
        cv_query_ap=None if query_ap is None else round(query_ap, 4),
        cv_words_ap=None if words_ap is None else round(words_ap, 4),
    )
