"""Preview a draft query and relevance settings over a search's past entries, saving nothing.

The API's dry-run endpoint calls :func:`preview_search` before a client saves new settings:
it answers which of the entries the search's sources already delivered would pass, which
would be filtered and why. It only reads (the search, its entries, its latest feedback
model); the test suite checks that no row changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Entry, NewsSource
from core.errors import ValidationError
from core.news.searches import get_search
from core.relevance.feedback import load_model
from core.relevance.matching import Document, matched_terms, matches
from core.relevance.query import QuerySyntaxError, parse_query
from core.relevance.scorer import FIT_CORPUS_SIZE, document_text, score_batch
from core.relevance.settings import validate_relevance_settings
from core.relevance.stream import entry_candidate

#: Past entries a preview looks at (the newest), as many as a scorer is fitted on.
PREVIEW_ENTRIES = FIT_CORPUS_SIZE


@dataclass(frozen=True)
class PreviewItem:
    """One past entry under the draft: its score, and why it would be filtered."""

    entry_id: str
    title: str
    url: str
    score: float
    filtered: str | None
    explanation: dict[str, Any]


@dataclass(frozen=True)
class Preview:
    """What the draft would deliver and filter; entries failing the query are counted."""

    delivered: list[PreviewItem] = field(default_factory=list)
    filtered: list[PreviewItem] = field(default_factory=list)
    not_matching: int = 0
    entries_per_second: float = 0.0


def preview_search(
    session: Session,
    organization_id: str,
    news_id: str,
    *,
    query_text: str | None,
    relevance_settings: Mapping[str, Any] | None,
    now: datetime,
) -> Preview:
    """Run ``query_text`` (``None``: the saved query) and ``relevance_settings``
    (``None``: the saved settings) over the search's past entries, newest first."""
    news = get_search(session, organization_id, news_id)
    text = str(news.searchQuery.get("query", "")) if query_text is None else query_text
    try:
        query = parse_query(text) if text.strip() else None
    except QuerySyntaxError as exc:
        raise ValidationError(str(exc), field="query") from None
    settings = validate_relevance_settings(
        news.relevanceSettings if relevance_settings is None else relevance_settings
    )
    # The article's own URL (origLink, canonical link): its host is what site: matches.
    article_url = Entry.canonicalUrl.label("url")
    entries = session.execute(
        select(Entry.id, Entry.title, Entry.summary, article_url, Entry.language, Entry.publishedAt)
        .join(NewsSource, NewsSource.sourceId == Entry.sourceId)
        .where(NewsSource.organizationId == organization_id, NewsSource.newsId == news.id)
        .order_by(Entry.createdAt.desc(), Entry.id)
        .limit(PREVIEW_ENTRIES)
    ).all()
    if not entries:
        return Preview()  # nothing fetched yet: nothing to fit a scorer on, nothing to show
    docs = [Document(e.title, e.summary or "", e.url, e.language or "") for e in entries]
    passing = [i for i, doc in enumerate(docs) if query is None or matches(query, doc)]
    candidates = [entry_candidate(entries[i]) for i in passing]
    model = (
        load_model(session, organization_id, news.id)
        if settings.model == "tfidf+feedback"
        else None
    )
    stream = [document_text(e.title, e.summary) for e in entries]
    verdicts, speed = score_batch(query, settings, stream, candidates, now=now, model=model)
    preview = Preview(not_matching=len(entries) - len(passing), entries_per_second=speed.per_second)
    for i, verdict in zip(passing, verdicts, strict=True):
        matched = matched_terms(query, docs[i]) if query is not None else []
        item = PreviewItem(
            entry_id=entries[i].id,
            title=entries[i].title,
            url=entries[i].url,
            score=verdict.score,
            filtered=verdict.filtered,
            explanation={"matched": matched, **verdict.explanation},
        )
        (preview.filtered if verdict.filtered else preview.delivered).append(item)
    return preview
