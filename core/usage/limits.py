"""Per-organization limits an operator may set: searches, sources, deliveries per day.

All three are optional columns of ``organizations`` (NULL: no limit) and are checked
where what they limit is made, with :class:`~core.errors.LimitReached` naming the limit:

- ``maxSearches``: searches the organization has; a new search past it is refused.
- ``maxSources``: **distinct** sources its searches follow (a feed followed by two of its
  searches is one source: fetched once, counted once); a change adding a source past it
  is refused, one that adds none is allowed even while over (a lowered limit never
  blocks edits or removals). OPML imports refuse the feeds past it one by one.
- ``maxDeliveriesPerDay``: digests sent to channels per UTC day
  (:mod:`core.delivery.daily_limit`).

Checks that count first lock the organization's row (``FOR NO KEY UPDATE``: rows that
merely reference the organization are not blocked), so two concurrent creations cannot
both take the last place.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from core.db.models import News, NewsSource, Organization
from core.errors import LimitReached, NotFound, ValidationError

#: The limits' names, as stored, shown and named by errors.
LIMIT_NAMES = ("maxSearches", "maxSources", "maxDeliveriesPerDay")
#: Largest value a limit may take (it must fit the column).
MAX_LIMIT_VALUE = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    """An organization's limits; ``None`` = no limit."""

    maxSearches: int | None = None
    maxSources: int | None = None
    maxDeliveriesPerDay: int | None = None

    def describe(self) -> str:
        """``maxSearches 10, maxDeliveriesPerDay 200``, or ``none``."""
        shown = [
            f"{name} {value}" for name in LIMIT_NAMES if (value := getattr(self, name)) is not None
        ]
        return ", ".join(shown) or "none"


def _limits(organization: Organization) -> Limits:
    return Limits(
        maxSearches=organization.maxSearches,
        maxSources=organization.maxSources,
        maxDeliveriesPerDay=organization.maxDeliveriesPerDay,
    )


def read_limits(session: Session, organization_id: str, *, lock: bool = False) -> Limits:
    """The organization's limits; ``lock`` holds its row until the transaction ends."""
    query = select(
        Organization.maxSearches, Organization.maxSources, Organization.maxDeliveriesPerDay
    ).where(Organization.id == organization_id)
    if lock:
        query = query.with_for_update(key_share=True)
    row = session.execute(query).one_or_none()
    if row is None:
        raise NotFound("no such organization")
    return Limits(*row)


def set_limits(session: Session, organization_id: str, limits: Limits) -> Limits:
    """Replace the organization's limits (``None`` lifts one); a value must be 0 to
    ``MAX_LIMIT_VALUE``. What already exists past a new limit stays."""
    for name in LIMIT_NAMES:
        value = getattr(limits, name)
        if value is not None and not 0 <= value <= MAX_LIMIT_VALUE:
            raise ValidationError(f"must be 0 to {MAX_LIMIT_VALUE}, or null", field=name)
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    for name in LIMIT_NAMES:
        setattr(organization, name, getattr(limits, name))
    session.flush()
    return _limits(organization)


def search_count(session: Session, organization_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(News).where(News.organizationId == organization_id)
        )
        or 0
    )


def source_count(session: Session, organization_id: str) -> int:
    """Distinct sources the organization's searches follow."""
    return (
        session.scalar(
            select(func.count(distinct(NewsSource.sourceId))).where(
                NewsSource.organizationId == organization_id
            )
        )
        or 0
    )


def check_new_search(session: Session, organization_id: str) -> Limits:
    """Before a search is created: lock the organization's limits and refuse a search
    past ``maxSearches``; returns the limits for the source check that follows."""
    limits = read_limits(session, organization_id, lock=True)
    limit = limits.maxSearches
    if limit is not None and (have := search_count(session, organization_id)) >= limit:
        raise LimitReached(
            "maxSearches",
            limit,
            f"limit maxSearches reached: the organization may have {limit} searches and has {have}",
        )
    return limits


def check_source_limit(session: Session, organization_id: str, limit: int, before: int) -> None:
    """After a change linked sources (flushed): refuse it if the organization now follows
    more than ``limit`` distinct sources and more than ``before`` it (its count before
    the change, read under the lock of :func:`read_limits`)."""
    have = source_count(session, organization_id)
    if have > limit and have > before:
        raise LimitReached(
            "maxSources",
            limit,
            f"limit maxSources reached: the organization's searches may follow {limit} "
            f"distinct sources, and this change would make it {have}",
        )
