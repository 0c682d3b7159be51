"""Storing and loading a search's feedback model (the learning is in
:mod:`core.relevance.learning`).

Once a search has 2 labels of each kind, a model is trained on its labeled stories with
TF-IDF of its recent stream and stored as a new version in ``relevanceModels`` as
zlib-compressed JSON (words, weights, calibration), never pickle: a row of the database
must never be able to run code when loaded. A row of an older layout is not loaded and
the next retrain replaces it. Every query takes the organization id first, and models
are keyed by search: feedback of one search (or organization) never touches another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import RelevanceModel, Story, StoryFeedback
from core.relevance.learning import (
    MIN_LABELS_PER_CLASS,
    MODEL_FORMAT,
    FeedbackModel,
    train_model,
)
from core.relevance.scorer import document_text, fit_vectorizer
from core.relevance.stream import stream_texts

#: Labels a model is trained on at most: the most recently given.
MAX_TRAINING_LABELS = 5000


def _latest(session: Session, organization_id: str, news_id: str) -> RelevanceModel | None:
    return session.scalars(
        select(RelevanceModel)
        .where(RelevanceModel.organizationId == organization_id, RelevanceModel.newsId == news_id)
        .order_by(RelevanceModel.version.desc())
        .limit(1)
    ).first()


def _loaded(row: RelevanceModel | None) -> FeedbackModel | None:
    if row is None or (row.metrics or {}).get("format") != MODEL_FORMAT:
        return None  # none yet, or an older layout that the next retrain replaces
    try:
        return FeedbackModel.from_bytes(row.model, row.version)
    except (ValueError, KeyError, TypeError, IndexError):  # damaged: retrained on next change
        return None


def load_model(session: Session, organization_id: str, news_id: str) -> FeedbackModel | None:
    """The latest model of a search of ``organization_id``, or ``None``."""
    return _loaded(_latest(session, organization_id, news_id))


def _query_score(explanation: dict[str, Any] | None, stored: float) -> float:
    """A story's query score before any feedback model (the stored score if unknown)."""
    components = (explanation or {}).get("components") or {}
    return float(components.get("query", stored))


@dataclass(frozen=True)
class _Label:
    story_id: str
    text: str
    relevant: bool
    query_score: float
    matched: bool  # passed the query (a suggestion did not)


def _labeled(session: Session, organization_id: str, news_id: str) -> list[_Label]:
    rows = session.execute(
        select(
            Story.id,
            Story.title,
            Story.snippet,
            Story.explanation,
            Story.relevanceScore,
            StoryFeedback.label,
        )
        .join(
            StoryFeedback,
            (StoryFeedback.organizationId == Story.organizationId)
            & (StoryFeedback.storyId == Story.id),
        )
        .where(StoryFeedback.organizationId == organization_id, StoryFeedback.newsId == news_id)
        .order_by(StoryFeedback.updatedAt.desc(), Story.id)
        .limit(MAX_TRAINING_LABELS)
    )
    labels = [
        _Label(
            row.id,
            document_text(row.title, row.snippet),
            row.label == "relevant",
            _query_score(row.explanation, row.relevanceScore or 0.0),
            not (row.explanation or {}).get("suggested"),
        )
        for row in rows
    ]
    return sorted(labels, key=lambda label: label.story_id)


def _labels_digest(labeled: Sequence[_Label]) -> str:
    text = "\n".join(f"{label.story_id}:{int(label.relevant)}" for label in labeled)
    return hashlib.sha256(text.encode()).hexdigest()


def retrain(
    session: Session, organization_id: str, news_id: str, *, now: datetime
) -> FeedbackModel | None:
    """Train and store a new model version if the search's labels changed since the
    latest one; return the model in force (``None`` while labels are too few).

    Called at the start of runs; cheap when nothing changed (one query of the labels,
    no training).
    """
    labeled = _labeled(session, organization_id, news_id)
    digest = _labels_digest(labeled)
    latest = _latest(session, organization_id, news_id)
    stored = (latest.metrics or {}) if latest is not None else {}
    if stored.get("labelsDigest") == digest and stored.get("format") == MODEL_FORMAT:
        return _loaded(latest)
    relevant = sum(label.relevant for label in labeled)
    if min(relevant, len(labeled) - relevant) < MIN_LABELS_PER_CLASS:
        return None
    texts = [label.text for label in labeled]
    stream = stream_texts(session, organization_id, news_id)
    model = train_model(
        texts,
        [label.relevant for label in labeled],
        [label.query_score for label in labeled],
        fit_vectorizer([*stream, *texts]),
        matched=[label.matched for label in labeled],
        stream=stream,
    )
    if model is None:
        return None
    version = (latest.version if latest is not None else 0) + 1
    row = RelevanceModel(
        organizationId=organization_id,
        newsId=news_id,
        version=version,
        model=model.to_bytes(),
        labelCount=len(labeled),
        metrics={
            "labelsDigest": digest,
            "format": MODEL_FORMAT,
            "relevant": relevant,
            "notRelevant": len(labeled) - relevant,
            "stage": model.stage,
            "features": len(model.vocabulary),
            "regularization": model.regularization,
            "streamWeight": model.stream_weight,
            "cvQueryAp": model.cv_query_ap,
            "cvWordsAp": model.cv_words_ap,
            "calibrated": model.calibration is not None,
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
    return replace(model, version=version)


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
