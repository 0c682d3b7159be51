"""Small builders of model rows for tests (real rows, real database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from core.db.models import Channel, News, Organization, Schedule, Story


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
