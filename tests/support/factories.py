"""Small builders of model rows for tests (real rows, real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.models import Channel, Delivery, Digest, News, Organization, Schedule, Story

#: Fires once a year: a schedule made due a few seconds ago has exactly one due fire.
YEARLY = "0 0 1 1 *"


def org(session: Session, slug: str = "acme", **fields: Any) -> Organization:
    row = Organization(name=fields.pop("name", slug.title()), slug=slug, **fields)
    session.add(row)
    session.flush()
    return row


def news(session: Session, organization: Organization, name: str = "AI", **fields: Any) -> News:
    fields.setdefault("searchQuery", {"query": name, "sources": []})
    row = News(organizationId=organization.id, name=name, **fields)
    session.add(row)
    session.flush()
    return row


def schedule(session: Session, search: News, cron: str = "*/5 * * * *", **fields: Any) -> Schedule:
    row = Schedule(organizationId=search.organizationId, newsId=search.id, cronExpr=cron, **fields)
    session.add(row)
    session.flush()
    return row


def story(session: Session, search: News, url: str, **fields: Any) -> Story:
    fields.setdefault("title", url)
    fields.setdefault("foundAt", datetime(2026, 1, 1, tzinfo=UTC))
    row = Story(organizationId=search.organizationId, newsId=search.id, url=url, **fields)
    session.add(row)
    session.flush()
    return row


def channel(session: Session, organization: Organization, type_: str = "webhook") -> Channel:
    row = Channel(organizationId=organization.id, type=type_, name=type_, config={})
    session.add(row)
    session.flush()
    return row


def delivery(session: Session, channel: Channel, search: News, **fields: Any) -> Delivery:
    """A delivery of a new (empty) digest of ``search`` to ``channel``."""
    digest = Digest(
        organizationId=search.organizationId, newsId=search.id, digestKey=f"test-{channel.id}"
    )
    session.add(digest)
    session.flush()
    row = Delivery(
        organizationId=search.organizationId, channelId=channel.id, digestId=digest.id, **fields
    )
    session.add(row)
    session.flush()
    return row


def due_schedule(
    session: Session, slug: str = "acme", *, ago: timedelta = timedelta(seconds=10), **fields: Any
) -> Schedule:
    """A yearly schedule due ``ago`` (negative: not yet) of a new organization's search;
    ``org_active``/``news_active`` false make the organization or search inactive."""
    organization = org(session, slug, isActive=fields.pop("org_active", True))
    search = news(session, organization, isActive=fields.pop("news_active", True))
    return schedule(session, search, YEARLY, nextRun=utcnow() - ago, **fields)
