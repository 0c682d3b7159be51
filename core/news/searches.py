"""Creating saved searches and their schedules, scoped to an organization."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pydantic
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.cron import parse_cron
from core.db.models import CATCH_UP_POLICIES, News, NewsSource, Schedule, Source
from core.db.scoped import get_owned
from core.delivery.wait_settings import parse_wait_settings
from core.errors import ValidationError
from core.news.providers import provider_url
from core.news.search_query import FeedSource, SearchQuery, SourceSpec
from core.relevance.settings import validate_relevance_settings
from core.usage.limits import check_new_search, check_source_limit, source_count

#: Longest search name accepted.
MAX_SEARCH_NAME_LENGTH = 255


def validate_search_query(raw: Mapping[str, Any]) -> SearchQuery:
    """Validate a ``searchQuery`` document; the error names the first bad field."""
    try:
        return SearchQuery.model_validate(dict(raw))
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in ("searchQuery", *error["loc"]))
        raise ValidationError(error["msg"].removeprefix("Value error, "), field=where) from None


def source_for_url(session: Session, url: str, type_: str = "feed") -> Source:
    """The shared source row for ``url``, created on first use."""
    source = session.scalar(select(Source).where(Source.url == url))
    if source is None:
        source = Source(url=url, type=type_)
        session.add(source)
        session.flush()
    return source


def source_url(
    spec: SourceSpec, query_text: str, base_urls: Mapping[str, str] | None = None
) -> str:
    """The URL a source spec is fetched from: the feed's own, or a provider's search URL."""
    if isinstance(spec, FeedSource):
        return spec.url
    return provider_url(
        spec.type,
        spec.query or query_text,
        language=spec.language,
        country=spec.country,
        base_urls=base_urls,
    )


def source_for_spec(
    session: Session,
    spec: SourceSpec,
    query_text: str,
    base_urls: Mapping[str, str] | None = None,
) -> Source:
    """The shared source row a spec names (providers' URLs built from ``base_urls``,
    default: the ``NEWSMON_PROVIDER_BASE_URLS`` setting), created on first use."""
    if base_urls is None:
        base_urls = get_settings().provider_base_urls
    return source_for_url(session, source_url(spec, query_text, base_urls), spec.type)


def get_search(session: Session, organization_id: str, news_id: str) -> News:
    return get_owned(session, News, organization_id, news_id, "news search")


def validate_settings(field: str, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``relevanceSettings`` or ``waitSettings`` with their own models (the
    :class:`ValidationError` names the field inside); the document is stored as given."""
    if field == "relevanceSettings":
        validate_relevance_settings(raw)
    else:
        parse_wait_settings(dict(raw or {}))
    return dict(raw or {})


def create_search(
    session: Session,
    organization_id: str,
    *,
    name: str,
    search_query: Mapping[str, Any],
    relevance_settings: Mapping[str, Any] | None = None,
    wait_settings: Mapping[str, Any] | None = None,
    provider_base_urls: Mapping[str, str] | None = None,
) -> News:
    """Create a search of ``organization_id`` and link it to its (shared) sources, within
    the organization's ``maxSearches`` and ``maxSources`` (:mod:`core.usage.limits`).

    Provider sources are built from ``provider_base_urls`` (default: the
    ``NEWSMON_PROVIDER_BASE_URLS`` setting).
    """
    name = name.strip()
    if not name or len(name) > MAX_SEARCH_NAME_LENGTH:
        raise ValidationError(f"must be 1 to {MAX_SEARCH_NAME_LENGTH} characters", field="name")
    query = validate_search_query(search_query)
    limits = check_new_search(session, organization_id)
    before = source_count(session, organization_id) if limits.maxSources is not None else 0
    news = News(
        organizationId=organization_id,
        name=name,
        searchQuery=query.model_dump(mode="json"),
        relevanceSettings=validate_settings("relevanceSettings", relevance_settings),
        waitSettings=validate_settings("waitSettings", wait_settings),
    )
    session.add(news)
    session.flush()
    linked: set[str] = set()
    for spec in query.sources:
        source = source_for_spec(session, spec, query.query, provider_base_urls)
        if source.id in linked:
            continue  # the same source named twice
        linked.add(source.id)
        session.add(NewsSource(organizationId=organization_id, newsId=news.id, sourceId=source.id))
    session.flush()
    if limits.maxSources is not None:
        check_source_limit(session, organization_id, limits.maxSources, before)
    return news


def add_schedule(
    session: Session,
    organization_id: str,
    news_id: str,
    *,
    cron_expr: str,
    timezone: str = "UTC",
    catch_up: str = "once",
    now: datetime,
) -> Schedule:
    """Attach a cron schedule to a search; ``nextRun`` is its first fire after ``now``."""
    news = get_search(session, organization_id, news_id)
    if catch_up not in CATCH_UP_POLICIES:
        raise ValidationError(f"must be one of {', '.join(CATCH_UP_POLICIES)}", field="catchUp")
    cron = parse_cron(cron_expr, timezone)
    schedule = Schedule(
        organizationId=organization_id,
        newsId=news.id,
        cronExpr=cron.expr,
        timezone=cron.timezone,
        catchUp=catch_up,
        nextRun=cron.next_fire(now),
    )
    session.add(schedule)
    session.flush()
    if news.nextRun is None or schedule.nextRun < news.nextRun:  # type: ignore[operator]
        news.nextRun = schedule.nextRun
    return schedule
