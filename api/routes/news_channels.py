"""Which channels a search delivers to: link and unlink (both must be the caller's)."""

# Path parameters keep the schema's camelCase names (newsId, channelId).
# ruff: noqa: N803

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.channels import ChannelOut, channel_out
from core.db.models import Channel, NewsChannel
from core.delivery.channel_editing import link_channel, unlink_channel
from core.news.searches import get_search

router = APIRouter(prefix="/news/{newsId}/channels", tags=["news"], responses=ERROR_RESPONSES)

Reader = Annotated[TenantContext, requires("news:read")]
Writer = Annotated[TenantContext, requires("news:write")]


@router.get("")
def list_linked(
    newsId: str, ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ChannelOut]:
    """The channels this search delivers to."""
    get_search(session, ctx.organization_id, newsId)
    query = (
        select(Channel)
        .join(NewsChannel, NewsChannel.channelId == Channel.id)
        .where(
            Channel.organizationId == ctx.organization_id,
            NewsChannel.organizationId == ctx.organization_id,
            NewsChannel.newsId == newsId,
        )
    )
    rows = list(session.scalars(paginate(query, Channel.id, cursor, limit)))
    return page_of([channel_out(r) for r in rows], [r.id for r in rows], limit)


@router.post("/{channelId}", status_code=204)
def link(newsId: str, channelId: str, ctx: Writer, session: SessionDep) -> Response:
    """Deliver this search's digests to the channel too (idempotent)."""
    if link_channel(session, ctx.organization_id, newsId, channelId):
        ctx.audit(session, "news.channel.link", "news", newsId, {"channelId": channelId})
    return Response(status_code=204)


@router.delete("/{channelId}", status_code=204)
def unlink(newsId: str, channelId: str, ctx: Writer, session: SessionDep) -> Response:
    unlink_channel(session, ctx.organization_id, newsId, channelId)
    ctx.audit(session, "news.channel.unlink", "news", newsId, {"channelId": channelId})
    return Response(status_code=204)
