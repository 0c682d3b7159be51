"""Clustering a search's new stories against its recent ones, in the run's transaction:
load (:func:`recent_docs`), decide (:func:`core.ingest.clusters.assign`), write."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, exists, select, update
from sqlalchemy.orm import Session

from core.db.models import DigestStory, News, Story
from core.ingest.clusters import CLUSTER_WINDOW, Doc, assign, cluster_threshold, explain
from core.ingest.similarity import Text

#: Recent stories a run compares its new ones with, at most (newest first).
MAX_CLUSTER_CANDIDATES = 5000


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _doc(row: Row[Any]) -> Doc:
    found = _aware(row.foundAt)
    assert found is not None
    # An untitled entry is stored under its URL as title: that is no headline to compare.
    title = "" if row.title == row.url else row.title
    return Doc(
        id=row.id,
        text=Text(title, row.snippet or "", _aware(row.publishedAt), row.sourceName),
        found_at=found,
        eligible=not row.isFiltered,
        score=row.relevanceScore,
        cluster_id=row.clusterId,
        duplicate_of=row.duplicateOfId,
        sent=row.wasDelivered or row.in_digest,
    )


def recent_docs(session: Session, news: News, now: datetime) -> list[Row[Any]]:
    """The search's stories found within :data:`CLUSTER_WINDOW` of ``now``, oldest first."""
    in_digest = exists().where(DigestStory.storyId == Story.id)
    rows: list[Row[Any]] = list(
        session.execute(
            select(
                Story.id,
                Story.title,
                Story.url,
                Story.snippet,
                Story.sourceName,
                Story.publishedAt,
                Story.foundAt,
                Story.isFiltered,
                Story.wasDelivered,
                Story.relevanceScore,
                Story.clusterId,
                Story.duplicateOfId,
                Story.explanation,
                in_digest.label("in_digest"),
            )
            .where(Story.organizationId == news.organizationId, Story.newsId == news.id)
            .where(Story.foundAt >= now - CLUSTER_WINDOW)
            .order_by(Story.foundAt.desc(), Story.id.desc())
            .limit(MAX_CLUSTER_CANDIDATES)
        )
    )
    rows.reverse()
    return rows


def cluster_new_stories(
    session: Session, news: News, story_ids: Iterable[str], now: datetime
) -> int:
    """Cluster the search's just-inserted stories and decide which of them, and of the
    clusters they join, are sent on their own; returns the number of stories updated."""
    wanted = set(story_ids)
    if not wanted:
        return 0
    rows = recent_docs(session, news, now)
    explanations = {row.id: row.explanation for row in rows}
    earlier = [_doc(row) for row in rows if row.id not in wanted]
    # The run's stories in the order their feeds published them: the first copy leads.
    new = sorted(
        (_doc(row) for row in rows if row.id in wanted),
        key=lambda d: (d.text.published or d.found_at, d.id),
    )
    changes = assign(new, earlier, cluster_threshold(news.relevanceSettings))
    for story_id, change in changes.items():
        session.execute(
            update(Story)
            .where(Story.organizationId == news.organizationId, Story.id == story_id)
            .values(
                clusterId=change.cluster_id,
                duplicateOfId=change.duplicate_of,
                explanation=explain(explanations.get(story_id), change),
                updatedAt=now,
            )
        )
    return len(changes)
