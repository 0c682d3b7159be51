"""Help past a search's hard filter: what it may have missed, words to add, what to label."""

# Path and query parameters keep the schema's camelCase names (newsId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.schemas import Out
from core.clock import utcnow
from core.relevance.suggestions import (
    MAX_SUGGESTIONS,
    missed_entries,
    stories_to_label,
    term_suggestions,
)

router = APIRouter(prefix="/news", tags=["relevance"], responses=ERROR_RESPONSES)

#: Items a suggestion list holds unless ``limit`` says otherwise.
DEFAULT_SUGGESTIONS = 20

Limit = Annotated[
    int, Query(ge=1, le=MAX_SUGGESTIONS, description="most items returned, best first")
]
Reader = Annotated[TenantContext, requires("news:read")]
StoryReader = Annotated[TenantContext, requires("stories:read")]


class MissedOut(Out):
    entryId: str
    title: str
    url: str
    publishedAt: datetime | None
    score: float = Field(description="the feedback-refined score (the query did not match)")
    reason: str = Field(description="one line: why feedback rates it highly")
    explanation: dict[str, Any]


class MissedList(Out):
    """Entries of the search's sources its query did not match but its feedback rates
    highly ("you may have missed"); never delivered unless the search opts in."""

    items: list[MissedOut]
    modelVersion: int | None
    note: str


class TermOut(Out):
    term: str
    weight: float = Field(description="the word's weight towards relevant in the model")
    newMatches: int = Field(description="recent entries the query misses that contain it")


class TermList(Out):
    """Words the search's feedback model weighs towards relevant that its query lacks."""

    items: list[TermOut]
    modelVersion: int | None
    note: str


class ToLabelOut(Out):
    storyId: str
    title: str
    url: str
    relevanceScore: float
    threshold: float = Field(description="the threshold the story was scored against")
    distance: float = Field(description="how far its score is from that threshold")
    isFiltered: bool
    reason: str | None


class ToLabelList(Out):
    """Unlabeled stories nearest their threshold: the labels that teach the most."""

    items: list[ToLabelOut]


@router.get("/{newsId}/suggestions/missed")
def list_missed(
    newsId: str, ctx: Reader, session: SessionDep, limit: Limit = DEFAULT_SUGGESTIONS
) -> MissedList:
    """Entries the query missed that the search's feedback model rates highly."""
    found = missed_entries(session, ctx.organization_id, newsId, now=utcnow(), limit=limit)
    return MissedList(
        items=[
            MissedOut(
                entryId=item.entry_id,
                title=item.title,
                url=item.url,
                publishedAt=item.published_at,
                score=item.score,
                reason=item.reason,
                explanation=item.explanation,
            )
            for item in found.missed
        ],
        modelVersion=found.model_version,
        note=found.note,
    )


@router.get("/{newsId}/suggestions/terms")
def list_terms(
    newsId: str, ctx: Reader, session: SessionDep, limit: Limit = DEFAULT_SUGGESTIONS
) -> TermList:
    """Query terms to consider: the feedback model's strongest words the query lacks."""
    found = term_suggestions(session, ctx.organization_id, newsId, limit=limit)
    return TermList(
        items=[
            TermOut(term=t.term, weight=t.weight, newMatches=t.new_matches) for t in found.terms
        ],
        modelVersion=found.model_version,
        note=found.note,
    )


@router.get("/{newsId}/suggestions/to-label")
def list_to_label(
    newsId: str, ctx: StoryReader, session: SessionDep, limit: Limit = DEFAULT_SUGGESTIONS
) -> ToLabelList:
    """ "Label these": unlabeled stories scored nearest their threshold, nearest first."""
    found = stories_to_label(session, ctx.organization_id, newsId, limit=limit)
    return ToLabelList(
        items=[
            ToLabelOut(
                storyId=c.story.id,
                title=c.story.title,
                url=c.story.url,
                relevanceScore=c.story.relevanceScore,
                threshold=c.threshold,
                distance=c.distance,
                isFiltered=c.story.isFiltered,
                reason=(c.story.explanation or {}).get("reason"),
            )
            for c in found
        ]
    )
