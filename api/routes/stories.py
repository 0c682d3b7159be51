"""Stories found for the organization's searches, with explanations, and feedback on them."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803, PLR0917

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import MAX_CURSOR_LENGTH, Cursor, Limit, Page, page_of
from api.schemas import Out, StrictBody, UtcDateTime
from core.db.models import Story
from core.db.scoped import get_owned
from core.errors import ValidationError
from core.news.story_feedback import label_story
from core.news.story_order import newest_first
from core.stories.export import EXPORT_CONTENT_TYPES, ExportFormat, export_stories
from core.stories.filters import StoryFilter, story_conditions
from core.stories.search import MAX_SEARCH_OFFSET, MAX_SEARCH_QUERY_LENGTH, search_stories

router = APIRouter(prefix="/stories", tags=["stories"], responses=ERROR_RESPONSES)


class StoryMatch(BaseModel):
    """How a story matched ``q``: its rank (higher is better) and its title and snippet
    as HTML, escaped, each match in ``<mark>``."""

    rank: float
    title: str
    snippet: str | None


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
    match: StoryMatch | None = Field(default=None, description="set when searching with q")


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


Since = Annotated[UtcDateTime | None, Query(description="found at or after")]
Until = Annotated[UtcDateTime | None, Query(description="found before")]


def story_filter(
    newsId: IdFilter = None,
    since: Since = None,
    until: Until = None,
    delivered: bool | None = None,
    minScore: float | None = None,
    filtered: bool | None = None,
    clusterId: IdFilter = None,
) -> StoryFilter:
    """The list filters of a story query, shared by the list, the search and the export."""
    return StoryFilter(
        news_id=newsId,
        since=since,
        until=until,
        delivered=delivered,
        min_score=minScore,
        filtered=filtered,
        cluster_id=clusterId,
    )


Filters = Annotated[StoryFilter, Depends(story_filter)]


@router.get("")
def list_stories(
    ctx: Reader,
    session: SessionDep,
    story_filter: Filters,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_SEARCH_QUERY_LENGTH,
            description='full-text search: words, "phrases", OR, -word; ranked, with match',
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[StoryOut]:
    """The organization's stories, filtered by any of the parameters, newest first: by
    when they were found, then (stories found in the same run) by publication time, then
    by id, descending; the order is the same on every page (``nextCursor``). With ``q``,
    the stories matching it, best first, each with its highlighted ``match``."""
    if q is not None:
        return _search(ctx, session, q, story_filter, limit, cursor)
    query = select(Story).where(*story_conditions(ctx.organization_id, story_filter))
    query = newest_first(session, ctx.organization_id, query, cursor, limit)
    rows = list(session.scalars(query))
    return page_of([StoryOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


def _search(
    ctx: TenantContext,
    session: Session,
    q: str,
    story_filter: StoryFilter,
    limit: int,
    cursor: str | None,
) -> Page[StoryOut]:
    """A ranked page; its cursor is the offset of the next page (none past the deepest
    page a search serves)."""
    if cursor and not cursor.isdigit():
        raise ValidationError("not a cursor of this search", field="cursor")
    offset = int(cursor or 0)
    if offset > MAX_SEARCH_OFFSET:
        return Page(items=[])
    hits = search_stories(
        session, ctx.organization_id, q, story_filter, limit=limit + 1, offset=offset
    )
    items = [
        StoryOut.model_validate(hit.story).model_copy(
            update={"match": StoryMatch(rank=hit.rank, title=hit.title, snippet=hit.snippet)}
        )
        for hit in hits[:limit]
    ]
    more = len(hits) > limit and offset + limit <= MAX_SEARCH_OFFSET
    return Page(items=items, nextCursor=str(offset + limit) if more else None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the stories, oldest first",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
def export(
    request: Request,
    ctx: Reader,
    story_filter: Filters,
    format: Literal["csv", "ndjson"] = "csv",
) -> StreamingResponse:
    """Every story matching the filters as CSV (a header row) or NDJSON (one object a
    line), oldest first, streamed in constant memory whatever the count."""
    fmt: ExportFormat = format
    chunks = export_stories(request.app.state.engine, ctx.organization_id, story_filter, fmt)
    return StreamingResponse(
        chunks,
        media_type=EXPORT_CONTENT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="stories.{fmt}"'},
    )


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
