"""The organization's own health: ``GET /health`` (every search, followed source and
channel with its state, last success, last error and next attempt; its health alerts)
and ``PUT /health/alert-channels`` (where those alerts go). See :mod:`core.health`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.schemas import StrictBody
from core.health.alert_channels import MAX_ALERT_CHANNELS, alert_targets, set_alert_channels
from core.health.detect import HealthPolicy
from core.health.report import health_report

router = APIRouter(prefix="/health", tags=["health"], responses=ERROR_RESPONSES)

Reader = Annotated[TenantContext, requires("news:read")]
Writer = Annotated[TenantContext, requires("channels:write")]

#: Longest id accepted (ids are 32 characters).
MAX_ID_LENGTH = 64


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SearchHealthOut(_Out):
    id: str
    name: str
    isActive: bool
    state: Literal["ok", "failing", "inactive"] = Field(
        description="failing: its last runs failed, as many as NEWSMON_HEALTH_RUN_FAILURES"
    )
    failedRuns: int = Field(description="failed runs since its last successful one")
    lastSuccess: datetime | None
    lastError: str | None
    nextAttempt: datetime | None = Field(description="its next scheduled run")


class SourceHealthOut(_Out):
    id: str
    url: str
    title: str | None
    state: Literal["new", "ok", "failing"]
    failureCount: int = Field(description="failed fetches in a row")
    lastSuccess: datetime | None
    lastError: str | None
    nextAttempt: datetime | None = Field(description="its next fetch (backing off while failing)")
    newsIds: list[str] = Field(description="the organization's searches following it")


class ChannelHealthOut(_Out):
    id: str
    name: str
    type: str
    isActive: bool
    state: Literal["ok", "failing", "broken"]
    consecutiveFailures: int
    lastSuccess: datetime | None = Field(description="its last delivery sent")
    lastError: str | None
    nextAttempt: datetime | None = Field(description="its next pending delivery's attempt")


class AlertStateOut(_Out):
    subjectKind: Literal["source", "channel", "news"]
    subjectId: str
    state: Literal["ok", "failing"]
    notifiedState: Literal["ok", "failing"] | None = Field(
        description="what the alert channels were last told (null: nothing yet)"
    )
    changedAt: datetime
    lastAlertAt: datetime | None
    lastError: str | None = Field(description="why the last alert reached no channel")


class HealthOut(_Out):
    """The organization's health; each list holds the most troubled rows first."""

    alertChannels: list[str] | None = Field(
        description="configured alert channels (null: every active working channel)"
    )
    alertTargets: list[str] = Field(description="the channels an alert would go to now")
    searches: list[SearchHealthOut]
    sources: list[SourceHealthOut]
    channels: list[ChannelHealthOut]
    alerts: list[AlertStateOut] = Field(description="subjects failing or whose recovery is untold")
    truncated: bool = Field(description="a list was cut at 1,000 rows")


class AlertChannelsIn(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"channelIds": ["0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"]}]},
    )

    channelIds: list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]] | None = Field(
        max_length=MAX_ALERT_CHANNELS,
        description="channels of this organization health alerts go to; null: the default "
        "(every active channel that works)",
    )


class AlertChannelsOut(BaseModel):
    alertChannels: list[str] | None
    alertTargets: list[str] = Field(description="the channels an alert would go to now")


def _policy(request: Request) -> HealthPolicy:
    return HealthPolicy.from_settings(request.app.state.settings)


@router.get("")
def read_health(request: Request, ctx: Reader, session: SessionDep) -> HealthOut:
    """Every search, source its searches follow and channel of the organization, with
    state, last success, last error and next attempt; its health alerts."""
    report = health_report(session, ctx.organization_id, _policy(request))
    return HealthOut.model_validate(report)


@router.put("/alert-channels")
def put_alert_channels(body: AlertChannelsIn, ctx: Writer, session: SessionDep) -> AlertChannelsOut:
    """Set the channels health alerts go to (``null``: the default). An id that is not a
    channel of this organization is a 422 naming it; nothing is stored then."""
    stored = set_alert_channels(session, ctx.organization_id, body.channelIds)
    targets = alert_targets(session, ctx.organization_id, stored)
    ctx.audit(
        session,
        "health.alert_channels",
        "organization",
        ctx.organization_id,
        {"channelIds": stored},
    )
    return AlertChannelsOut(alertChannels=stored, alertTargets=[c.id for c in targets])
