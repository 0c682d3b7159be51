"""OPML in and out: a reader's feed list as sources of a search, and every search's
sources as one file."""

# Path parameters keep the schema's camelCase names (newsId).
# ruff: noqa: N803

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field

from api.deps import SessionDep, TenantContext, fetch_guard, requires
from api.errors import ERROR_RESPONSES
from api.schemas import Out, StrictBody
from core.clock import utcnow
from core.news.opml_sources import export_opml, import_opml

router = APIRouter(tags=["opml"], responses=ERROR_RESPONSES)

#: Longest OPML text a request carries (a 100-feed export is about 20,000 characters);
#: it stays below the request body limit (256 KiB) unless most characters need escapes.
MAX_OPML_TEXT = 100_000
#: Content type of an exported OPML file.
OPML_CONTENT_TYPE = "text/x-opml; charset=utf-8"

_EXAMPLE_OPML = (
    '<?xml version="1.0"?><opml version="2.0"><head><title>Reader</title></head><body>'
    '<outline text="Tech"><outline type="rss" text="Go blog" '
    'xmlUrl="https://go.dev/blog/feed.atom"/></outline></body></opml>'
)


class OpmlImportIn(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"opml": _EXAMPLE_OPML}]})

    opml: str = Field(
        min_length=1, max_length=MAX_OPML_TEXT, description="the OPML document, as text"
    )


class AcceptedFeedOut(Out):
    url: str
    title: str | None


class RefusedFeedOut(Out):
    url: str
    title: str | None
    reason: Literal["invalid_url", "duplicate", "over_limit", "private_address", "limit_reached"]
    message: str


class OpmlReportOut(Out):
    """What the import added, what it refused and why, and the search's sources now."""

    accepted: list[AcceptedFeedOut]
    refused: list[RefusedFeedOut]
    sourceCount: int


Reader = Annotated[TenantContext, requires("news:read")]
Writer = Annotated[TenantContext, requires("news:write")]


@router.post("/news/{newsId}/sources/opml")
def import_sources(
    newsId: str, body: OpmlImportIn, request: Request, ctx: Writer, session: SessionDep
) -> OpmlReportOut:
    """Add the feeds of an OPML file (another reader's export) to the search's sources.

    Each feed outline is accepted or refused with its reason: ``invalid_url``,
    ``duplicate`` (already followed, or twice in the file), ``over_limit`` (the search's
    source limit), ``private_address`` or ``limit_reached`` (the organization's
    ``maxSources``, set by its operator). A document that is not OPML, or declares a
    DOCTYPE or entities, is a 422 and changes nothing.
    """
    policy, resolver = fetch_guard(request)
    report = import_opml(
        session, ctx.organization_id, newsId, body.opml, policy=policy, resolver=resolver
    )
    ctx.audit(
        session,
        "news.opml_import",
        "news",
        newsId,
        {"accepted": len(report.accepted), "refused": len(report.refused)},
    )
    return OpmlReportOut(
        accepted=[AcceptedFeedOut.model_validate(f) for f in report.accepted],
        refused=[RefusedFeedOut.model_validate(f) for f in report.refused],
        sourceCount=report.source_count,
    )


@router.get(
    "/opml",
    response_class=Response,
    responses={
        200: {
            "description": "OPML 2.0: one folder per search",
            "content": {"text/x-opml": {"schema": {"type": "string"}}},
        }
    },
)
def export_sources(ctx: Reader, session: SessionDep) -> Response:
    """Every source the organization's searches follow, as OPML (a folder per search)."""
    body = export_opml(session, ctx.organization_id, now=utcnow())
    return Response(
        body,
        media_type=OPML_CONTENT_TYPE,
        headers={"Content-Disposition": 'attachment; filename="newsmon.opml"'},
    )
