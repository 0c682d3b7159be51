"""Learning from a search's feedback: a per-search logistic regression on TF-IDF words.

Once a search has ``MIN_LABELS_PER_CLASS`` labels of each kind, a classifier is trained
on its labeled stories (the IDF also sees its recent stories) and stored as a new version
in ``relevanceModels``. Its probability is blended with the query score with a weight
that grows with the number of labels (``blend``): a few labels nudge, many labels lead.

Models are stored as zlib-compressed JSON (vocabulary, IDF, coefficients, intercept),
never pickle: a row of the database must never be able to run code when loaded. Every
query takes the organization id first, and models are keyed by search: feedback of one
search (or organization) never touches another's scores.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import RelevanceModel, Story, StoryFeedback
from core.relevance.query import tokenize
from core.relevance.scorer import document_text, fit_vectorizer

#: Labels of each kind (relevant, not relevant) needed before a model is trained.
MIN_LABELS_PER_CLASS = 2
#: Largest share of the score the model may take, however many labels there are.
MAX_MODEL_WEIGHT = 0.85
#: Labels at which the model takes half of ``MAX_MODEL_WEIGHT``.
HALF_WEIGHT_LABELS = 40
#: Inverse regularization strength of the logistic regression.
REGULARIZATION_C = 10.0
#: Most words a model keeps (the most frequent of its training stream).
MAX_MODEL_FEATURES = 20_000
#: Recent stories of the search whose words the model's IDF is fitted on.
IDF_CORPUS_SIZE = 2000
#: Version of the stored JSON layout.
MODEL_FORMAT = 1


def _analyzer(text: str) -> list[str]:
    return tokenize(text)


@dataclass(frozen=True)
class FeedbackModel:
    """A trained per-search classifier, as stored (plain arrays, no pickled objects)."""

    vocabulary: tuple[str, ...]
    idf: np.ndarray[Any, Any]
    coef: np.ndarray[Any, Any]
    intercept: float
    label_count: int
    version: int = 0

    @property
    def weight(self) -> float:
        """The model's share of the blended score for its number of labels."""
        return MAX_MODEL_WEIGHT * self.label_count / (self.label_count + HALF_WEIGHT_LABELS)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        """P(relevant) of each text, in one sparse product."""
        counter = CountVectorizer(analyzer=_analyzer, vocabulary=list(self.vocabulary))
        counts = counter.transform(list(texts)).astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf, as in the fit
        rows = counts.multiply(self.idf).tocsr()
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        logits = np.asarray(rows @ self.coef).ravel() / norms + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))

    def blend(self, query_score: float, probability: float) -> tuple[float, dict[str, Any]]:
        """Blend the query score with the model's probability; with the explanation."""
        weight = self.weight
        score = (1.0 - weight) * query_score + weight * probability
        return score, {
            "kind": "feedback",
            "version": self.version,
            "labels": self.label_count,
            "probability": round(probability, 6),
            "weight": round(weight, 6),
            "contribution": round(score - query_score, 6),
        }

    def to_bytes(self) -> bytes:
        document = {
            "format": MODEL_FORMAT,
            "vocabulary": list(self.vocabulary),
            "idf": [round(float(x), 6) for x in self.idf],
            "coef": [round(float(x), 6) for x in self.coef],
            "intercept": float(self.intercept),
            "labelCount": self.label_count,
        }
        return zlib.compress(json.dumps(document, separators=(",", ":")).encode())

    @classmethod
    def from_bytes(cls, data: bytes, version: int = 0) -> FeedbackModel:
        document = json.loads(zlib.decompress(data))
        if document.get("format") != MODEL_FORMAT:
            raise ValueError(f"unknown relevance model format {document.get('format')!r}")
        return cls(
            vocabulary=tuple(document["vocabulary"]),
            idf=np.asarray(document["idf"], dtype=np.float64),
            coef=np.asarray(document["coef"], dtype=np.float64),
            intercept=float(document["intercept"]),
            label_count=int(document["labelCount"]),
            version=version,
        )


def train_model(
    texts: Sequence[str], labels: Sequence[bool], corpus: Sequence[str] = ()
) -> FeedbackModel | None:
    """Train on labeled ``texts`` (IDF fitted on them and ``corpus``); ``None`` while
    either kind has fewer than ``MIN_LABELS_PER_CLASS`` labels. Deterministic."""
    positives = sum(labels)
    if min(positives, len(labels) - positives) < MIN_LABELS_PER_CLASS:
        return None
    vectorizer = fit_vectorizer([*texts, *corpus])
    if len(vectorizer.vocabulary_) > MAX_MODEL_FEATURES:
        vectorizer.set_params(max_features=MAX_MODEL_FEATURES)
        vectorizer.fit([*texts, *corpus])
    features = vectorizer.transform(list(texts))
    classifier = LogisticRegression(C=REGULARIZATION_C, class_weight="balanced", max_iter=1000)
    classifier.fit(features, np.asarray(labels, dtype=int))
    return FeedbackModel(
        vocabulary=tuple(vectorizer.get_feature_names_out()),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=np.asarray(classifier.coef_[0], dtype=np.float64),
        intercept=float(classifier.intercept_[0]),
        label_count=len(labels),
    )


# --- persistence ---------------------------------------------------------------------


def load_model(session: Session, organization_id: str, news_id: str) -> FeedbackModel | None:
    """The latest model of a search of ``organization_id``, or ``None``."""
    row = session.scalars(
        select(RelevanceModel)
        .where(RelevanceModel.organizationId == organization_id, RelevanceModel.newsId == news_id)
        .order_by(RelevanceModel.version.desc())
        .limit(1)
    ).first()
    return FeedbackModel.from_bytes(row.model, row.version) if row is not None else None


def _labeled(session: Session, organization_id: str, news_id: str) -> list[tuple[str, str, bool]]:
    rows = session.execute(
        select(Story.id, Story.title, Story.snippet, StoryFeedback.label)
        .join(
            StoryFeedback,
            (StoryFeedback.organizationId == Story.organizationId)
            & (StoryFeedback.storyId == Story.id),
        )
        .where(StoryFeedback.organizationId == organization_id, StoryFeedback.newsId == news_id)
        .order_by(Story.id)
    )
    return [
        (row.id, document_text(row.title, row.snippet), row.label == "relevant") for row in rows
    ]


def _labels_digest(labeled: Sequence[tuple[str, str, bool]]) -> str:
    text = "\n".join(f"{story_id}:{int(label)}" for story_id, _, label in labeled)
    return hashlib.sha256(text.encode()).hexdigest()


def retrain(
    session: Session, organization_id: str, news_id: str, *, now: datetime
) -> FeedbackModel | None:
    """Train and store a new model version if the search's labels changed since the
    latest one; return the model in force (``None`` while labels are too few).

    Called by the API's feedback route and at the start of runs; cheap when nothing
    changed (one query of the labels, no training).
    """
    labeled = _labeled(session, organization_id, news_id)
    digest = _labels_digest(labeled)
    latest = session.scalars(
        select(RelevanceModel)
        .where(RelevanceModel.organizationId == organization_id, RelevanceModel.newsId == news_id)
        .order_by(RelevanceModel.version.desc())
        .limit(1)
    ).first()
    if latest is not None and (latest.metrics or {}).get("labelsDigest") == digest:
        return FeedbackModel.from_bytes(latest.model, latest.version)
    corpus = [
        document_text(title, snippet)
        for title, snippet in session.execute(
            select(Story.title, Story.snippet)
            .where(Story.organizationId == organization_id, Story.newsId == news_id)
            .order_by(Story.foundAt.desc(), Story.id)
            .limit(IDF_CORPUS_SIZE)
        )
    ]
    model = train_model([t for _, t, _ in labeled], [lab for _, _, lab in labeled], corpus)
    if model is None:
        return None
    version = (latest.version if latest is not None else 0) + 1
    positives = sum(lab for _, _, lab in labeled)
    row = RelevanceModel(
        organizationId=organization_id,
        newsId=news_id,
        version=version,
        model=model.to_bytes(),
        labelCount=len(labeled),
        metrics={
            "labelsDigest": digest,
            "relevant": positives,
            "notRelevant": len(labeled) - positives,
            "features": len(model.vocabulary),
            "trainedAt": now.isoformat(),
        },
        createdAt=now,
        updatedAt=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent retrain stored this version first: use the newest stored model.
        return load_model(session, organization_id, news_id)
    return FeedbackModel(
        model.vocabulary, model.idf, model.coef, model.intercept, model.label_count, version
    )


def model_count(session: Session, organization_id: str, news_id: str) -> int:
    """How many model versions a search has."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(RelevanceModel)
            .where(
                RelevanceModel.organizationId == organization_id, RelevanceModel.newsId == news_id
            )
        )
        or 0
    )
