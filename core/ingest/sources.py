"""Refreshing one shared source: conditional GET, parse, store, back off when failing.

A source followed by many searches is fetched once per interval of its own clock
(:mod:`core.ingest.source_clock`), whichever searches follow it. A refresh claims it
with a conditional update, committed at once (its ``nextFetchAt`` moves a lease ahead,
so a second claim finds it not due and a dead worker's source is due again after the
lease); the fetch runs with no transaction open, and its entries and outcome are stored
in a short transaction of their own, which also sets the next fetch. A failing source
backs off exponentially and keeps its last error; it is never disabled, and recovers at
its next successful fetch.
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, or_, update
from sqlalchemy.orm import Session

from core.db.models import Source
from core.db.session import unit_of_work
from core.errors import NewsmonError
from core.feeds import ParsedFeed, parse_feed
from core.feeds.model import describe_error
from core.fetch import FetchResult, GuardedClient
from core.fetch.politeness import Busy, Limiter, take_slot
from core.ingest.entries import store_entries
from core.ingest.source_clock import (
    REFRESH_QUEUE_GRACE,
    ClockPolicy,
    follower_period,
    next_interval,
    publishing_gap,
)
from core.usage.counters import count_fetch

#: The source clock's bounds when no settings say otherwise.
DEFAULT_CLOCK = ClockPolicy()

#: How long a refresh holds its claim on a source (a fetch's deadline is 30 s); a dead
#: worker's source is due again after it.
FETCH_LEASE = timedelta(minutes=2)
#: First backoff of a failing source; doubles per consecutive failure.
BACKOFF_BASE = timedelta(minutes=1)
#: Longest backoff (and longest Retry-After honoured): a failing source is retried at
#: least this often, so it recovers by itself.
BACKOFF_MAX = timedelta(hours=6)
#: Longest stored error text.
MAX_ERROR_CHARS = 500

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceOutcome:
    """What happened to one source: fresh (not due, or another worker has it), fetched,
    not_modified, deferred (its host was busy) or failed. ``first_success``: the source
    had never been fetched successfully before (its followers are waiting for it);
    ``retry_in``: when a deferred source is due again."""

    state: str
    new_entries: int = 0
    error: str | None = None
    first_success: bool = False
    retry_in: timedelta | None = None


def _seconds_header(value: str | None, now: datetime) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(timedelta(0), when - now)


def cache_lifetime(headers: dict[str, str], now: datetime) -> timedelta | None:
    """How long the server says the response may be reused (Cache-Control max-age, else
    Expires); ``None`` when it does not say."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return timedelta(seconds=int(value.strip()))
    return _seconds_header(headers.get("expires"), now)


def backoff(failures: int, retry_after: timedelta | None = None) -> timedelta:
    """Delay before retrying a source that failed ``failures`` times in a row."""
    delay: timedelta = BACKOFF_BASE * int(2 ** min(failures - 1, 20))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, BACKOFF_MAX)


@dataclass(frozen=True)
class ClaimedSource:
    """A source taken for one fetch: what the request needs, read by the claim."""

    id: str
    url: str
    type: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Fetched:
    """What one fetch found, before anything is stored: a parsed feed, "not modified"
    (no feed, no error) or an error; ``headers`` are the response's, lower-cased."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    feed: ParsedFeed | None = None
    error: str | None = None
    retry_after: timedelta | None = None
    busy: timedelta | None = None


def claim_source(session: Session, source_id: str, now: datetime) -> ClaimedSource | None:
    """Take the source for fetching if it is due (``None``: fresh, backing off, or another
    worker has it); one conditional update, committed by the caller before the fetch, so
    no lock is held while the network is slow."""
    row = session.execute(
        update(Source)
        .where(Source.id == source_id, or_(Source.nextFetchAt.is_(None), Source.nextFetchAt <= now))
        .values(nextFetchAt=now + FETCH_LEASE)
        .returning(Source.id, Source.url, Source.type, Source.etag, Source.lastModified)
    ).one_or_none()
    return None if row is None else ClaimedSource(*row)


def _record_failure(
    source: Source,
    now: datetime,
    error: str,
    status: int | None,
    retry_after: timedelta | None = None,
) -> SourceOutcome:
    error = error[:MAX_ERROR_CHARS]
    source.status = "failing"
    source.failureCount += 1
    source.lastStatusCode = status
    source.lastFetchedAt = now
    source.lastError = {"error": error, "status": status, "at": now.isoformat()}
    source.nextFetchAt = now + backoff(source.failureCount, retry_after)
    source.queuedUntil = None
    return SourceOutcome("failed", error=error)


def _record_success(
    session: Session, source: Source, now: datetime, fetched: Fetched, policy: ClockPolicy
) -> None:
    feed = fetched.feed
    interval = next_interval(
        policy,
        gap=publishing_gap(e.published for e in feed.entries) if feed is not None else None,
        previous=timedelta(seconds=source.fetchInterval) if source.fetchInterval else None,
        follower_period=follower_period(session, source.id, now),
        cache_lifetime=cache_lifetime(fetched.headers, now),
    )
    source.status = "ok"
    source.failureCount = 0
    source.lastStatusCode = fetched.status
    source.lastError = None
    source.lastFetchedAt = now
    source.lastSuccessAt = now
    source.fetchInterval = round(interval.total_seconds())
    source.nextFetchAt = now + interval
    source.queuedUntil = None


def _get(
    client: GuardedClient, url: str, headers: dict[str, str], limiter: Limiter | None
) -> FetchResult | Busy:
    """GET ``url`` in a slot of its host (:class:`Busy` when none came soon enough)."""
    if limiter is None:
        return client.fetch(url, headers=headers)
    with take_slot(limiter, urlsplit(url).hostname or "") as busy:
        return busy if busy is not None else client.fetch(url, headers=headers)


def fetch_source(
    source: ClaimedSource,
    client: GuardedClient,
    now: datetime,
    limiter: Limiter | None = None,
) -> Fetched:
    """Conditional GET and parse of a claimed source; no database work.

    ``limiter`` spaces and bounds fetches per host (across processes in production); a
    host busy beyond a short patience defers the fetch. Whatever goes wrong ends as an
    error to record on the source, never as an exception: the source's outcome must be
    recorded, and one broken feed must not fail every search following it.
    """
    headers: dict[str, str] = {
        "Accept": "application/rss+xml, application/atom+xml, "
        "application/feed+json, application/xml;q=0.9, */*;q=0.5"
    }
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.last_modified:
        headers["If-Modified-Since"] = source.last_modified
    try:
        response = _get(client, source.url, headers, limiter)
    except NewsmonError as exc:  # refused, timed out, too large, too many redirects
        return Fetched(None, error=str(exc))
    if isinstance(response, Busy):
        return Fetched(None, busy=timedelta(seconds=response.wait_s))
    lowered = {k.lower(): v for k, v in response.headers.items()}
    if response.status == 304:
        return Fetched(304, lowered)
    if response.status != 200:
        retry_after = _seconds_header(lowered.get("retry-after"), now)
        return Fetched(
            response.status, lowered, error=f"HTTP {response.status}", retry_after=retry_after
        )
    return _parsed(source, response, lowered)


def _parsed(source: ClaimedSource, response: FetchResult, headers: dict[str, str]) -> Fetched:
    try:
        feed = parse_feed(response.body, headers, response.url, source_type=source.type)
    except NewsmonError as exc:  # not a feed: previous entries stay untouched
        return Fetched(response.status, headers, error=str(exc))
    except Exception as exc:  # a parser bug: visible on the source, logged with its trace
        log.exception("parsing source %s (%s) failed", source.id, source.url)
        return Fetched(response.status, headers, error=f"parser error: {describe_error(exc)}")
    return Fetched(response.status, headers, feed=feed)


def record_fetch(
    session: Session,
    source_id: str,
    fetched: Fetched,
    now: datetime,
    policy: ClockPolicy = DEFAULT_CLOCK,
    *,
    resent_when_busy: bool = False,
) -> SourceOutcome:
    """Store a fetch's new entries and its outcome (state, error, backoff, validators,
    the next fetch on the source's own clock), and count the fetch in the usage of the
    organizations following the source (not a deferred one: no request was made).
    ``resent_when_busy``: the caller sends a deferred refresh again itself, so the clock
    must not send one of its own meanwhile."""
    outcome = _store_fetch(
        session, source_id, fetched, now, policy, resent_when_busy=resent_when_busy
    )
    if outcome.state != "deferred":
        count_fetch(session.connection(), source_id, now)
    return outcome


def _store_fetch(
    session: Session,
    source_id: str,
    fetched: Fetched,
    now: datetime,
    policy: ClockPolicy,
    *,
    resent_when_busy: bool,
) -> SourceOutcome:
    source = session.get(Source, source_id)
    if source is None:  # deleted while it was fetched: nothing to record on
        return SourceOutcome("failed" if fetched.error else "fetched", error=fetched.error)
    if fetched.busy is not None:  # its host had no slot: due again when one may be free
        source.nextFetchAt = now + fetched.busy
        # A refresh the caller sends again carries a follow-up run; had the clock's own
        # refresh claimed the source first, that run would never start.
        source.queuedUntil = now + fetched.busy + REFRESH_QUEUE_GRACE if resent_when_busy else None
        return SourceOutcome("deferred", retry_in=fetched.busy)
    if fetched.error is not None:
        return _record_failure(source, now, fetched.error, fetched.status, fetched.retry_after)
    first = source.lastSuccessAt is None
    _record_success(session, source, now, fetched, policy)
    feed = fetched.feed
    if feed is None:
        return SourceOutcome("not_modified", first_success=first)
    new = store_entries(session, source.id, feed, now)
    source.etag = fetched.headers.get("etag")
    source.lastModified = fetched.headers.get("last-modified")
    source.title = feed.title or source.title
    if feed.bozo_reason:
        source.lastError = {"warning": feed.bozo_reason[:MAX_ERROR_CHARS], "at": now.isoformat()}
    return SourceOutcome("fetched", new_entries=new, first_success=first)


def refresh_source(
    engine: Engine,
    source_id: str,
    client: GuardedClient,
    now: datetime,
    *,
    limiter: Limiter | None = None,
    policy: ClockPolicy = DEFAULT_CLOCK,
    resent_when_busy: bool = False,
) -> SourceOutcome:
    """Fetch the source if due and store what it gave, each step committed on its own:
    claim (short transaction), fetch (no transaction open), store entries and outcome
    (short transaction). The outcome stands whatever happens later."""
    with unit_of_work(engine) as session:
        claimed = claim_source(session, source_id, now)
    if claimed is None:
        return SourceOutcome("fresh")
    fetched = fetch_source(claimed, client, now, limiter)
    with unit_of_work(engine) as session:
        return record_fetch(
            session, claimed.id, fetched, now, policy, resent_when_busy=resent_when_busy
        )
