"""Saved news searches of the caller's organization, and "run now"."""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field
from sqlalchemy import delete, select

from api.deps import (
    SessionDep,
    TenantContext,
    fetch_guard,
    request_broker,
    requires,
    throttled,
)
from api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.schemas import NON_BLANK, Out, PatchBody, StrictBody, document
from core.clock import utcnow
from core.db.models import News, Run
from core.delivery.wait_settings import WaitSettings
from core.news.editing import delete_search, update_search
from core.news.feed_targets import check_feed_urls
from core.news.search_query import FeedSource, SearchQuery
from core.news.searches import MAX_SEARCH_NAME_LENGTH, create_search, get_search
from core.relevance.preview import PreviewItem, preview_search
from core.relevance.settings import RelevanceSettings
from core.scheduling.runs import mark_enqueued, request_run
from workers.broker import BROKER_ERRORS
from workers.refresh import enqueue_refreshes
from workers.runs import enqueue_runs

router = APIRouter(prefix="/news", tags=["news"], responses=ERROR_RESPONSES)

#: Longest draft query a preview accepts.
MAX_QUERY_LENGTH = 4096

_EXAMPLE_QUERY: dict[str, Any] = {
    "query": '"open source" AND ai',
    "sources": [{"url": "https://example.com/feed.xml"}],
}

#: The JSON documents of a search, validated by their core models and stored as sent.
SearchQueryDoc = Annotated[dict[str, Any], document(SearchQuery)]
RelevanceSettingsDoc = Annotated[dict[str, Any], document(RelevanceSettings)]
WaitSettingsDoc = Annotated[dict[str, Any], document(WaitSettings)]


class NewsCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "AI", "searchQuery": _EXAMPLE_QUERY}]}
    )

    name: str = Field(min_length=1, max_length=MAX_SEARCH_NAME_LENGTH, json_schema_extra=NON_BLANK)
    searchQuery: SearchQueryDoc
    relevanceSettings: RelevanceSettingsDoc = {}
    waitSettings: WaitSettingsDoc = {}


class NewsUpdate(PatchBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "AI", "isActive": False}]})

    name: str | None = Field(
        default=None, min_length=1, max_length=MAX_SEARCH_NAME_LENGTH, json_schema_extra=NON_BLANK
    )
    searchQuery: SearchQueryDoc | None = None
    relevanceSettings: RelevanceSettingsDoc | None = None
    waitSettings: WaitSettingsDoc | None = None
    isActive: bool | None = None


class NewsOut(Out):
    id: str
    name: str
    searchQuery: dict[str, Any]
    relevanceSettings: dict[str, Any]
    waitSettings: dict[str, Any]
    isActive: bool
    lastRun: datetime | None
    lastSent: datetime | None
    nextRun: datetime | None
    createdAt: datetime
    updatedAt: datetime


class PreviewIn(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"query": "ai AND NOT crypto", "relevanceSettings": {"threshold": 0.3}}]
        }
    )

    query: str | None = Field(
        default=None,
        max_length=MAX_QUERY_LENGTH,
        description="draft query (saved one if null)",
        json_schema_extra={"format": "news-query"},
    )
    relevanceSettings: RelevanceSettingsDoc | None = Field(
        default=None, description="draft settings (saved ones if null)"
    )


class PreviewItemOut(Out):
    entryId: str
    title: str
    url: str
    score: float
    filtered: str | None = Field(description="why it would be filtered; null if delivered")
    explanation: dict[str, Any]


class PreviewOut(Out):
    """What the draft would deliver and filter among the search's recent entries."""

    wouldDeliver: list[PreviewItemOut]
    filtered: list[PreviewItemOut]
    notMatching: int
    entriesPerSecond: float


class RunStarted(Out):
    runId: str
    created: bool


Reader = Annotated[TenantContext, requires("news:read")]
Writer = Annotated[TenantContext, requires("news:write")]
Runner = Annotated[
    TenantContext, throttled("news:run", "run-now", lambda settings: settings.run_now_per_minute)
]


@router.post("", status_code=201)
def create_news(body: NewsCreate, ctx: Writer, session: SessionDep, request: Request) -> NewsOut:
    """Create a search; its sources are linked (shared between organizations). A feed on
    a loopback, private or metadata address is refused unless the fetch allowlist has it."""
    _check_feeds(request, body.searchQuery)
    news = create_search(
        session,
        ctx.organization_id,
        name=body.name,
        search_query=body.searchQuery,
        relevance_settings=body.relevanceSettings,
        wait_settings=body.waitSettings,
    )
    ctx.audit(session, "news.create", "news", news.id, {"name": news.name})
    return NewsOut.model_validate(news)


@router.get("")
def list_news(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[NewsOut]:
    """The organization's searches, newest first."""
    query = select(News).where(News.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, News.id, cursor, limit)))
    return page_of([NewsOut.model_validate(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{newsId}")
def read_news(newsId: str, ctx: Reader, session: SessionDep) -> NewsOut:
    return NewsOut.model_validate(get_search(session, ctx.organization_id, newsId))


@router.patch("/{newsId}")
def patch_news(
    newsId: str, body: NewsUpdate, ctx: Writer, session: SessionDep, request: Request
) -> NewsOut:
    """Change some fields of a search (absent fields stay as they are)."""
    changes = body.model_dump(exclude_unset=True)
    if body.searchQuery is not None:
        _check_feeds(request, body.searchQuery)
    news = update_search(session, ctx.organization_id, newsId, changes)
    ctx.audit(session, "news.update", "news", news.id, {"fields": sorted(changes)})
    return NewsOut.model_validate(news)


@router.delete("/{newsId}", status_code=204)
def remove_news(newsId: str, ctx: Writer, session: SessionDep) -> Response:
    """Delete a search with its schedules, stories and runs."""
    delete_search(session, ctx.organization_id, newsId)
    ctx.audit(session, "news.delete", "news", newsId)
    return Response(status_code=204)


def _check_feeds(request: Request, search_query: dict[str, Any]) -> None:
    """Refuse a feed the fetcher would refuse, before anything is stored."""
    query = SearchQuery.model_validate(search_query)
    policy, resolver = fetch_guard(request)
    urls = [source.url if isinstance(source, FeedSource) else "" for source in query.sources]
    check_feed_urls(policy, urls, resolver)


def _item(item: PreviewItem) -> PreviewItemOut:
    return PreviewItemOut(
        entryId=item.entry_id,
        title=item.title,
        url=item.url,
        score=item.score,
        filtered=item.filtered,
        explanation=item.explanation,
    )


@router.post("/{newsId}/preview")
def preview(newsId: str, body: PreviewIn, ctx: Reader, session: SessionDep) -> PreviewOut:
    """Dry-run a draft query and relevance settings over the search's recent entries:
    which would be delivered, which filtered and why. Nothing is written."""
    result = preview_search(
        session,
        ctx.organization_id,
        newsId,
        query_text=body.query,
        relevance_settings=body.relevanceSettings,
        now=utcnow(),
    )
    session.rollback()  # a dry run: whatever the scorer touched is not kept
    return PreviewOut(
        wouldDeliver=[_item(i) for i in result.delivered],
        filtered=[_item(i) for i in result.filtered],
        notMatching=result.not_matching,
        entriesPerSecond=result.entries_per_second,
    )


@router.post(
    "/{newsId}/run",
    status_code=202,
    responses={503: {"model": ErrorResponse, "description": "queue unreachable"}},
)
def run_now(newsId: str, request: Request, ctx: Runner, session: SessionDep) -> RunStarted:
    """Start a run of the search now; a manual run still waiting is returned instead.

    The run scores what the search's sources have gathered, at once; sources not fetched
    in the last minute are refreshed too, and what they bring starts a follow-up run.
    The run is committed, then enqueued; if the broker is unreachable the new run is
    deleted again and the answer is 503 (a crash in between leaves an orphan the
    scheduler's sweeper enqueues).
    """
    asked = request_run(session, ctx.organization_id, newsId, now=utcnow())
    run_id, created = asked.run_id, asked.created
    session.commit()
    broker = request_broker(request)
    try:
        enqueue_runs(broker, [run_id])
    except BROKER_ERRORS:
        if created:
            session.execute(
                delete(Run).where(
                    Run.organizationId == ctx.organization_id,
                    Run.id == run_id,
                    Run.state == "queued",
                    Run.enqueuedAt.is_(None),
                )
            )
            session.commit()
        raise ApiError(503, "the run queue is unreachable; nothing was started") from None
    mark_enqueued(session, [run_id], now=utcnow())
    with contextlib.suppress(*BROKER_ERRORS):  # the source clock resends them if lost
        enqueue_refreshes(broker, list(asked.refresh_ids), follow_up=[newsId])
    ctx.audit(session, "news.run", "run", run_id, {"newsId": newsId, "created": created})
    return RunStarted(runId=run_id, created=created)
