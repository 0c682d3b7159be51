"""Help past the hard filter: entries the query missed, words to add, stories to label.

- :func:`missed_entries` ("you may have missed"): entries already fetched from the
  search's sources that its query did not match but that its feedback model rates at
  least ``SUGGESTION_MIN_SCORE``. Listed only; delivered only when the search sets
  ``relevanceSettings.deliverSuggestions``.
- :func:`term_suggestions`: the model's strongest positive words the query lacks, with
  how many recent entries the query misses contain each.
- :func:`stories_to_label` ("label these"): the search's unlabeled stories scored
  nearest their threshold, where a label teaches the calibration and the words most.

All three only read; every query takes the organization first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Story, StoryFeedback
from core.news.searches import get_search
from core.relevance.explain import MIN_WORD_LENGTH, RELATED_WORD_MIN_DOCS
from core.relevance.feedback import load_model
from core.relevance.learning import FeedbackModel
from core.relevance.matching import matches, positive_terms
from core.relevance.query import Query, parse_query, tokenize
from core.relevance.scorer import SUGGESTION_MIN_SCORE, document_text, fit_scorer
from core.relevance.settings import validate_relevance_settings
from core.relevance.stream import entry_candidate, entry_document, stream_entries
from core.relevance.threshold import FALLBACK_THRESHOLD

#: Most entries, words or stories one suggestion list holds.
MAX_SUGGESTIONS = 200
#: Recent stories of a search looked at for "label these".
LABEL_CANDIDATE_STORIES = 1000

#: Why a list is empty while the search has no model with learned words.
NO_WORDS_NOTE = (
    "nothing to suggest until feedback has taught this search words: at least 5 labels "
    "of each kind, and words that rank the labels better than the query alone"
)


@dataclass(frozen=True)
class MissedEntry:
    """An entry the query did not match that feedback rates highly."""

    entry_id: str
    title: str
    url: str
    published_at: datetime | None
    score: float
    reason: str
    explanation: dict[str, Any]


@dataclass(frozen=True)
class TermSuggestion:
    """A word to consider adding to the query, and what it would add."""

    term: str
    weight: float
    new_matches: int


@dataclass(frozen=True)
class Suggestions:
    """A suggestion list; ``note`` says why it is empty or how it was made."""

    missed: list[MissedEntry]
    terms: list[TermSuggestion]
    model_version: int | None
    note: str


def _search_parts(
    session: Session, organization_id: str, news_id: str
) -> tuple[Query | None, Any, FeedbackModel | None]:
    news = get_search(session, organization_id, news_id)
    settings = validate_relevance_settings(news.relevanceSettings)
    raw = str(news.searchQuery.get("query", "")).strip()
    query = parse_query(raw) if raw else None
    model = (
        load_model(session, organization_id, news.id)
        if settings.model == "tfidf+feedback"
        else None
    )
    return query, settings, model


def _unmatched(
    session: Session, organization_id: str, news_id: str, query: Query
) -> tuple[list[Any], list[int]]:
    """The search's recent entries, and which of them the query misses and no story of
    the search already holds."""
    entries = stream_entries(session, organization_id, news_id)
    urls = [e.canonicalUrl for e in entries]
    known = set(
        session.scalars(
            select(Story.url).where(
                Story.organizationId == organization_id,
                Story.newsId == news_id,
                Story.url.in_(urls),
            )
        )
    )
    missed = [
        i
        for i, e in enumerate(entries)
        if e.canonicalUrl not in known and not matches(query, entry_document(e))
    ]
    return entries, missed


def missed_entries(
    session: Session, organization_id: str, news_id: str, *, now: datetime, limit: int
) -> Suggestions:
    """Entries the query missed that the feedback model rates highly, best first."""
    query, settings, model = _search_parts(session, organization_id, news_id)
    version = model.version if model is not None else None
    if query is None:
        return Suggestions([], [], version, "a search without a query misses nothing")
    if model is None or not model.suggests:
        return Suggestions([], [], version, NO_WORDS_NOTE)
    entries, missed = _unmatched(session, organization_id, news_id, query)
    texts = [document_text(e.title, e.summary) for e in entries]
    scorer = fit_scorer(query, settings, texts, model)
    rows = scorer.fit.corpus_rows
    candidates = [entry_candidate(entries[i], matched=False) for i in missed]
    verdicts = scorer.score(candidates, now=now, rows=None if rows is None else rows[missed])
    found = [
        MissedEntry(
            entry_id=entries[i].id,
            title=entries[i].title,
            url=entries[i].url,
            published_at=entries[i].publishedAt,
            score=verdict.score,
            reason=verdict.explanation["reason"],
            explanation=verdict.explanation,
        )
        for i, verdict in zip(missed, verdicts, strict=True)
        if verdict.suggested
    ]
    found.sort(key=lambda item: (-item.score, item.entry_id))
    note = (
        f"entries of this search's sources the query did not match, rated at least "
        f"{SUGGESTION_MIN_SCORE} by feedback model version {model.version} "
        f"({model.label_count} labels); never delivered unless "
        "relevanceSettings.deliverSuggestions is true"
    )
    return Suggestions(found[:limit], [], model.version, note)


def _covered(word: str, query: Query) -> bool:
    """Whether the query already has ``word`` (as a term, in a phrase or by a prefix)."""
    for term in positive_terms(query):
        if term.endswith("*") and word.startswith(term[:-1]):
            return True
        if word in tokenize(term):
            return True
    return False


def term_suggestions(
    session: Session, organization_id: str, news_id: str, *, limit: int
) -> Suggestions:
    """The feedback model's strongest positive words that the query lacks."""
    query, _, model = _search_parts(session, organization_id, news_id)
    version = model.version if model is not None else None
    if query is None:
        return Suggestions([], [], version, "a search without a query needs no terms")
    if model is None or not model.uses_words:
        return Suggestions([], [], version, NO_WORDS_NOTE)
    entries, missed = _unmatched(session, organization_id, news_id, query)
    vocabularies = [set(tokenize(document_text(e.title, e.summary))) for e in entries]
    order = np.argsort(-model.coef, kind="stable")
    terms: list[TermSuggestion] = []
    for column in order:
        weight = float(model.coef[column])
        word = model.vocabulary[column]
        if weight <= 0 or len(terms) >= limit:
            break
        if len(word) < MIN_WORD_LENGTH or not word.isalpha() or _covered(word, query):
            continue
        if sum(word in vocabulary for vocabulary in vocabularies) < RELATED_WORD_MIN_DOCS:
            continue  # rare in the stream: a name or a typo more often than a topic
        new = sum(word in vocabularies[i] for i in missed)
        terms.append(TermSuggestion(word, round(weight, 3), new))
    note = (
        f"words feedback model version {model.version} ({model.label_count} labels) "
        "weighs most towards relevant that the query does not contain; newMatches: recent "
        "entries the query misses that contain the word"
    )
    return Suggestions([], terms, model.version, note)


@dataclass(frozen=True)
class LabelCandidate:
    """An unlabeled story near its threshold."""

    story: Story
    threshold: float

    @property
    def distance(self) -> float:
        return round(abs(self.story.relevanceScore - self.threshold), 4)


def stories_to_label(
    session: Session, organization_id: str, news_id: str, *, limit: int
) -> list[LabelCandidate]:
    """The search's recent unlabeled stories nearest their threshold, nearest first."""
    news = get_search(session, organization_id, news_id)
    labeled = select(StoryFeedback.storyId).where(
        StoryFeedback.organizationId == organization_id, StoryFeedback.newsId == news.id
    )
    stories = session.scalars(
        select(Story)
        .where(Story.organizationId == organization_id, Story.newsId == news.id)
        .where(Story.id.not_in(labeled))
        .order_by(Story.foundAt.desc(), Story.id)
        .limit(LABEL_CANDIDATE_STORIES)
    ).all()
    candidates = [LabelCandidate(story, _threshold_of(story)) for story in stories]
    candidates.sort(key=lambda c: (c.distance, c.story.id))
    return candidates[:limit]


def _threshold_of(story: Story) -> float:
    """The threshold the story was scored against (older stories: the fallback)."""
    threshold = (story.explanation or {}).get("threshold")
    if isinstance(threshold, dict) and isinstance(threshold.get("value"), int | float):
        return float(threshold["value"])
    return FALLBACK_THRESHOLD
