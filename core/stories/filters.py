"""The filters every story list takes (list, search, export), as SQL conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement

from core.db.models import Story


@dataclass(frozen=True)
class StoryFilter:
    """Which stories of an organization: ``since`` inclusive, ``until`` exclusive (both on
    ``foundAt``); None means "any"."""

    news_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    delivered: bool | None = None
    min_score: float | None = None
    filtered: bool | None = None
    cluster_id: str | None = None


def story_conditions(organization_id: str, story_filter: StoryFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``story_filter`` over ``stories``, the organization first."""
    f = story_filter
    conditions = [Story.organizationId == organization_id]
    if f.news_id is not None:
        conditions.append(Story.newsId == f.news_id)
    if f.since is not None:
        conditions.append(Story.foundAt >= f.since)
    if f.until is not None:
        conditions.append(Story.foundAt < f.until)
    if f.delivered is not None:
        conditions.append(Story.wasDelivered == f.delivered)
    if f.min_score is not None:
        conditions.append(Story.relevanceScore >= f.min_score)
    if f.filtered is not None:
        conditions.append(Story.isFiltered == f.filtered)
    if f.cluster_id is not None:
        conditions.append(Story.clusterId == f.cluster_id)
    return conditions
