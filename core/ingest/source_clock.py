"""Sources on their own clock: when each shared source is fetched next, and which are due.

A source is refreshed on its own schedule, whatever the cron of the searches following
it: the scheduler sends a refresh for every due source each tick
(:func:`sources_to_refresh`), and a search's run scores what its sources have gathered.

The interval follows how often the source publishes, as Miniflux's entry-frequency
scheduler does: the median gap between the newest dated items of the feed itself
(:func:`publishing_gap`; the feed's own window tells the rate at the first fetch, where
a count of stored entries would see a whole backlog arrive at once), clamped to
``[floor, max_interval]``. The floor is ``min_interval``, lower for a source that an
urgent search follows: a search whose schedule fires every minute lowers it to one
minute (never below ``urgent_interval``). A server's Cache-Control/Expires lifetime is
honoured as a lower bound (up to :data:`MAX_CACHE_LIFETIME`). Failing sources back off
(``core.ingest.sources.backoff``).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import exists, literal, or_, select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.cron.schedule import CronSchedule, parse_cron
from core.db.base import UTCDateTime
from core.db.models import News, NewsSource, Organization, Schedule, Source

#: Newest dated items whose gaps estimate how often a source publishes.
RATE_SAMPLE = 10
#: Longest server-given lifetime (Cache-Control max-age, Expires) honoured.
MAX_CACHE_LIFETIME = timedelta(hours=6)
#: How long a sent refresh is waited for before the source clock sends another.
REFRESH_QUEUE_GRACE = timedelta(minutes=2)
#: Due sources sent per batch of one scheduler tick.
REFRESH_BATCH_SIZE = 1000


@dataclass(frozen=True)
class ClockPolicy:
    """Bounds of a source's fetch interval (settings ``NEWSMON_SOURCE_*_INTERVAL_SECONDS``).

    Parameters:
      min_interval: the shortest interval of a source no urgent search follows.
      urgent_interval: the shortest interval at all (a search firing every minute).
      max_interval: the longest interval, however quiet the source.
    """

    min_interval: timedelta = timedelta(minutes=5)
    urgent_interval: timedelta = timedelta(minutes=1)
    max_interval: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.urgent_interval <= self.min_interval <= self.max_interval:
            raise ValueError("need 0 < urgent_interval <= min_interval <= max_interval")

    @classmethod
    def from_settings(cls, settings: Settings) -> ClockPolicy:
        return cls(
            min_interval=timedelta(seconds=settings.source_min_interval_seconds),
            urgent_interval=timedelta(seconds=settings.source_urgent_interval_seconds),
            max_interval=timedelta(seconds=settings.source_max_interval_seconds),
        )


def publishing_gap(published: Iterable[datetime | None]) -> timedelta | None:
    """Median gap between the newest :data:`RATE_SAMPLE` distinct publication times;
    ``None`` with fewer than two."""
    times = sorted({t for t in published if t is not None}, reverse=True)[:RATE_SAMPLE]
    if len(times) < 2:
        return None
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(times)]
    return timedelta(seconds=statistics.median(gaps))


def next_interval(
    policy: ClockPolicy,
    *,
    gap: timedelta | None,
    previous: timedelta | None,
    follower_period: timedelta | None,
    cache_lifetime: timedelta | None,
) -> timedelta:
    """The wait until a source's next fetch after a successful one (a pure function).

    ``gap`` is the publishing gap of this fetch's feed (``None``: 304 or undated items,
    then ``previous`` stands, else the longest interval); ``follower_period`` the period
    of the most frequent schedule following the source, which may lower the floor.
    """
    floor = policy.min_interval
    if follower_period is not None:
        floor = max(policy.urgent_interval, min(floor, follower_period))
    base = gap if gap is not None else previous if previous is not None else policy.max_interval
    interval = min(policy.max_interval, max(floor, base))
    if cache_lifetime is not None:
        interval = max(interval, min(cache_lifetime, MAX_CACHE_LIFETIME))
    return interval


@lru_cache(maxsize=4096)
def _schedule(expr: str, tz: str) -> CronSchedule:
    return parse_cron(expr, tz)


def cron_period(expr: str, tz: str, now: datetime) -> timedelta:
    """The time between the next two fires of a cron schedule."""
    first, second = _schedule(expr, tz).next_fires(now, 2)
    return second - first


def follower_period(session: Session, source_id: str, now: datetime) -> timedelta | None:
    """The shortest period among the active schedules of active searches following the
    source (``None``: none follows it on a schedule)."""
    rows = session.execute(
        select(Schedule.cronExpr, Schedule.timezone)
        .join(NewsSource, NewsSource.newsId == Schedule.newsId)
        .join(News, News.id == Schedule.newsId)
        .where(NewsSource.sourceId == source_id, Schedule.isActive, News.isActive)
        .distinct()
    ).all()
    periods: Sequence[timedelta] = [cron_period(expr, tz, now) for expr, tz in rows]
    return min(periods, default=None)


def _followed() -> object:
    """A source some active search of an active organization follows."""
    return exists().where(
        NewsSource.sourceId == Source.id,
        News.id == NewsSource.newsId,
        News.isActive,
        Organization.id == News.organizationId,
        Organization.isActive,
    )


def sources_to_refresh(
    session: Session,
    *,
    now: datetime,
    limit: int = REFRESH_BATCH_SIZE,
    grace: timedelta = REFRESH_QUEUE_GRACE,
) -> list[str]:
    """Due sources that some active search follows and no refresh is on its way for,
    oldest due first; marked ``queuedUntil = now + grace`` in this transaction, so a
    second scheduler replica does not send them again (and, should the message be lost,
    they are sent again after ``grace``). The caller enqueues after commit."""
    at = literal(now, UTCDateTime())
    query = (
        select(Source.id)
        .where(
            or_(Source.nextFetchAt.is_(None), Source.nextFetchAt <= at),
            or_(Source.queuedUntil.is_(None), Source.queuedUntil <= at),
            _followed(),  # type: ignore[arg-type]
        )
        .order_by(Source.nextFetchAt.asc().nulls_first())
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Source)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(Source)
            .where(Source.id.in_(ids))
            .values(queuedUntil=now + grace)
            .execution_options(synchronize_session=False)
        )
    return ids


def mark_due_now(
    session: Session, organization_id: str, news_id: str, *, now: datetime, fresher_than: timedelta
) -> list[str]:
    """Make the search's sources due now unless fetched within ``fresher_than`` or backing
    off (a failing source keeps its backoff); returns their ids, marked queued: the caller
    sends their refreshes after commit ("run now" wants what was published just now)."""
    at = literal(now, UTCDateTime())
    ids = list(
        session.scalars(
            select(Source.id)
            .join(NewsSource, NewsSource.sourceId == Source.id)
            .where(
                NewsSource.organizationId == organization_id,
                NewsSource.newsId == news_id,
                or_(
                    Source.lastFetchedAt.is_(None),
                    Source.lastFetchedAt < literal(now - fresher_than, UTCDateTime()),
                ),
                or_(
                    Source.status != "failing",
                    Source.nextFetchAt.is_(None),
                    Source.nextFetchAt <= at,
                ),
                or_(Source.queuedUntil.is_(None), Source.queuedUntil <= at),
            )
        )
    )
    if ids:
        session.execute(
            update(Source)
            .where(Source.id.in_(ids))
            .values(nextFetchAt=now, queuedUntil=now + REFRESH_QUEUE_GRACE)
            .execution_options(synchronize_session=False)
        )
    return ids
