"""A search's recent stream: the newest entries of the sources it follows.

The stream is what a search's scorer and feedback model are fitted on, what a preview
runs over and where suggestions come from. Every query takes the organization first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from core.db.models import Entry, NewsSource
from core.relevance.matching import Document
from core.relevance.scorer import FIT_CORPUS_SIZE, Candidate, document_text


def stream_entries(
    session: Session, organization_id: str, news_id: str, limit: int = FIT_CORPUS_SIZE
) -> list[Row[Any]]:
    """The newest ``limit`` entries of the search's sources (id, canonicalUrl, title,
    summary, url, language, publishedAt), newest first."""
    return list(
        session.execute(
            select(
                Entry.id,
                Entry.canonicalUrl,
                Entry.title,
                Entry.summary,
                Entry.url,
                Entry.language,
                Entry.publishedAt,
            )
            .join(NewsSource, NewsSource.sourceId == Entry.sourceId)
            .where(NewsSource.organizationId == organization_id, NewsSource.newsId == news_id)
            .order_by(Entry.createdAt.desc(), Entry.id)
            .limit(limit)
        )
    )


def stream_texts(session: Session, organization_id: str, news_id: str) -> list[str]:
    """Title + summary of the search's newest entries: what its scorer is fitted on."""
    return [
        document_text(row.title, row.summary)
        for row in stream_entries(session, organization_id, news_id)
    ]


class EntryRow(Protocol):
    """The columns of an entry the scorer and the filter read."""

    title: str
    summary: str | None
    url: str
    language: str | None
    publishedAt: datetime | None


def entry_document(entry: EntryRow) -> Document:
    """An entry row as the query's hard filter sees it."""
    return Document(entry.title, entry.summary or "", entry.url, entry.language or "")


def entry_candidate(entry: EntryRow, *, matched: bool = True) -> Candidate:
    """An entry row as the scorer sees it (``matched``: it passed the query)."""
    return Candidate(
        entry.title,
        entry.summary or "",
        entry.url,
        entry.language or "",
        entry.publishedAt,
        matched=matched,
    )
