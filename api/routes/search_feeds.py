"""A search as a feed any reader can follow: its feed token (API key routes) and the
public ``feed.xml`` / ``feed.json`` opened by that token alone."""

# Path and query parameters keep the schema's camelCase names (newsId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES, ApiError
from core.keys import MAX_KEY_LENGTH
from core.news.feed_tokens import (
    feed_token_of,
    issue_feed_token,
    revoke_feed_token,
    search_for_feed_token,
)
from core.news.search_feed import (
    CONTENT_TYPES,
    FeedFormat,
    FeedLinks,
    feed_etag,
    feed_stories,
    render_feed,
)

router = APIRouter(prefix="/news", tags=["feeds"], responses=ERROR_RESPONSES)

#: Seconds a reader (never a shared cache: the URL is a secret) may reuse a feed.
FEED_MAX_AGE_S = 300
#: Cache-Control of every feed answer.
FEED_CACHE_CONTROL = f"private, max-age={FEED_MAX_AGE_S}"
#: The one answer for a wrong, revoked or rotated token and for an unknown search.
NO_FEED = "no such feed"


class FeedTokenIssued(BaseModel):
    """A new feed token: shown once, only its hash is kept."""

    token: str
    start: str
    issuedAt: datetime
    atomUrl: str
    rssUrl: str
    jsonUrl: str


class FeedTokenStatus(BaseModel):
    active: bool
    start: str | None
    issuedAt: datetime | None


Reader = Annotated[TenantContext, requires("news:read")]
Writer = Annotated[TenantContext, requires("news:write")]
Token = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="the search's feed token (POST /news/{newsId}/feed-token)",
    ),
]


def _base_url(request: Request) -> str:
    public: str = request.app.state.settings.public_url
    return public or str(request.base_url).rstrip("/")


def _links(request: Request, news_id: str, token: str, fmt: FeedFormat) -> FeedLinks:
    base = _base_url(request)
    feed = (
        f"{base}/news/{news_id}/feed.json" if fmt == "json" else f"{base}/news/{news_id}/feed.xml"
    )
    suffix = "&format=rss" if fmt == "rss" else ""
    return FeedLinks(feed_url=f"{feed}?token={token}{suffix}", home_url=f"{base}/")


@router.post("/{newsId}/feed-token", status_code=201)
def create_feed_token(
    newsId: str, request: Request, ctx: Writer, session: SessionDep
) -> FeedTokenIssued:
    """Issue the search's feed token, or rotate it: the previous token (and every URL
    made with it) stops working at once. The token is shown in this answer only."""
    issued = issue_feed_token(session, ctx.organization_id, newsId)
    ctx.audit(session, "news.feed_token", "news", newsId, {"start": issued.row.start})
    return FeedTokenIssued(
        token=issued.token,
        start=issued.row.start,
        issuedAt=issued.row.updatedAt,
        atomUrl=_links(request, newsId, issued.token, "atom").feed_url,
        rssUrl=_links(request, newsId, issued.token, "rss").feed_url,
        jsonUrl=_links(request, newsId, issued.token, "json").feed_url,
    )


@router.get("/{newsId}/feed-token")
def read_feed_token(newsId: str, ctx: Reader, session: SessionDep) -> FeedTokenStatus:
    """Whether the search has a feed token, and its first characters."""
    row = feed_token_of(session, ctx.organization_id, newsId)
    if row is None:
        return FeedTokenStatus(active=False, start=None, issuedAt=None)
    return FeedTokenStatus(active=True, start=row.start, issuedAt=row.updatedAt)


@router.delete("/{newsId}/feed-token", status_code=204)
def delete_feed_token(newsId: str, ctx: Writer, session: SessionDep) -> Response:
    """Revoke the search's feed token: its feed URLs answer 404 from now on."""
    if not revoke_feed_token(session, ctx.organization_id, newsId):
        raise ApiError(404, "this search has no feed token")
    ctx.audit(session, "news.feed_token_revoke", "news", newsId)
    return Response(status_code=204)


def _feed_responses(*types: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "the feed",
            "content": {t.split(";")[0]: {"schema": {"type": "string"}} for t in types},
        },
        304: {"description": "not modified since the ETag sent in If-None-Match"},
    }


def _serve(
    request: Request, session: SessionDep, newsId: str, token: str, fmt: FeedFormat
) -> Response:
    news = search_for_feed_token(session, newsId, token)
    if news is None:
        raise ApiError(404, NO_FEED)
    links = _links(request, news.id, token, fmt)
    stories = feed_stories(session, news.organizationId, news.id)
    etag = feed_etag(news, stories, fmt, links)
    headers = {"ETag": etag, "Cache-Control": FEED_CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    body = render_feed(news, stories, fmt, links)
    return Response(body, media_type=CONTENT_TYPES[fmt], headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): ``*`` or a listed tag equal to ``etag``."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/{newsId}/feed.xml",
    response_class=Response,
    responses=_feed_responses(CONTENT_TYPES["atom"], CONTENT_TYPES["rss"]),
)
def read_feed_xml(
    newsId: str,
    token: Token,
    request: Request,
    session: SessionDep,
    format: Literal["atom", "rss"] = "atom",
) -> Response:
    """The search's stories as Atom 1.0 (default) or RSS 2.0, for any feed reader.

    No API key: the feed token opens this search's feed only. Answers carry an ETag
    (send it back in If-None-Match for a 304) and ``Cache-Control: private``.
    """
    return _serve(request, session, newsId, token, format)


@router.get(
    "/{newsId}/feed.json",
    response_class=Response,
    responses=_feed_responses(CONTENT_TYPES["json"]),
)
def read_feed_json(newsId: str, token: Token, request: Request, session: SessionDep) -> Response:
    """The search's stories as JSON Feed 1.1; opened by the feed token, like feed.xml."""
    return _serve(request, session, newsId, token, "json")
