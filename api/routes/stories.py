"""Stories found for the organization's searches, with explanations, and feedback on them."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import MAX_CURSOR_LENGTH, Cursor, Limit, Page, page_of
from api.schemas import Out, StrictBody, UtcDateTime
from core.db.models import Story
from core.db.scoped import get_owned
from core.news.story_feedback import label_story
from core.news.story_order import newest_first

router = APIRouter(prefix="/stories", tags=["stories"], responses=ERROR_RESPONSES)


class StoryOut(Out):
    id: str
    newsId: str
    clusterId: str | None
    duplicateOfId: str | None
    title: str
    url: str
    snippet: str | None
    sourceName: str | None
    publishedAt: datetime | None
    relevanceScore: float
    explanation: dict[str, Any] | None
    isFiltered: bool
    wasDelivered: bool
    foundAt: datetime


class FeedbackIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"label": "relevant"}]})

    label: Literal["relevant", "not_relevant"]


class FeedbackOut(Out):
    storyId: str
    newsId: str
    label: str
    updatedAt: datetime


Reader = Annotated[TenantContext, requires("stories:read")]
Writer = Annotated[TenantContext, requires("stories:write")]
IdFilter = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


@router.get("")
def list_stories(
    ctx: Reader,
    session: SessionDep,
    newsId: IdFilter = None,
    since: Annotated[UtcDateTime | None, Query(description="found at or after")] = None,
    delivered: bool | None = None,
    minScore: float | None = None,
    filtered: bool | None = None,
    clusterId: IdFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[StoryOut]:
    """The organization's stories, filtered by any of the parameters, newest first: by
    when they were found, then (stories found in the same run) by publication time, then
    by id, descending; the order is the same on every page (``nextCursor``)."""
    query = select(Story).where(Story.organizationId == ctx.organization_id)
    if newsId is not None:
        query = query.where(Story.newsId == newsId)
    if since is not None:
        query = query.where(Story.foundAt >= since)
    if delivered is not None:
        query = query.where(Story.wasDelivered == delivered)
    if minScore is not None:
        query = query.where(Story.relevanceScore >= minScore)
    if filtered is not None:
        query = query.where(Story.isFiltered == filtered)
    if clusterId is not None:
        query = query.where(Story.clusterId == clusterId)
    query = newest_first(session, ctx.organization_id, query, cursor, limit)
    rows = list(session.scalars(query))
    return page_of([StoryOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


def _story(session: Session, organization_id: str, story_id: str) -> Story:
    return get_owned(session, Story, organization_id, story_id, "story")


@router.get("/{storyId}")
def read_story(storyId: str, ctx: Reader, session: SessionDep) -> StoryOut:
    return StoryOut.model_validate(_story(session, ctx.organization_id, storyId))


@router.put("/{storyId}/feedback")
def put_feedback(storyId: str, body: FeedbackIn, ctx: Writer, session: SessionDep) -> FeedbackOut:
    """Label a story relevant or not (the latest label wins)."""
    story = _story(session, ctx.organization_id, storyId)
    feedback = label_story(session, ctx.organization_id, story, body.label, ctx.key_id)
    ctx.audit(session, "story.feedback", "story", story.id, {"label": body.label})
    return FeedbackOut.model_validate(feedback)
