"""Refreshing one shared source: conditional GET, parse, store, back off when failing.

A source followed by many searches is fetched at most once per freshness window: the
first run to find it due claims it with a conditional update (on PostgreSQL a second
run blocks on that row until the first commits, then finds it fresh and uses the
entries the first stored). A failing source backs off exponentially and keeps its last
error; it is never disabled, and recovers at its next successful fetch.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from core.db.models import Source
from core.errors import NewsmonError
from core.feeds import parse_feed
from core.fetch import FetchResult, GuardedClient
from core.fetch.politeness import HostLimiter
from core.ingest.entries import store_entries

#: A source is not fetched again within this window (unless its server asks for longer).
FRESHNESS_WINDOW = timedelta(minutes=5)
#: Longest freshness taken from Cache-Control/Expires; feeds must not go stale for days.
MAX_FRESHNESS = timedelta(hours=6)
#: First backoff of a failing source; doubles per consecutive failure.
BACKOFF_BASE = timedelta(minutes=1)
#: Longest backoff (and longest Retry-After honoured): a failing source is retried at
#: least this often, so it recovers by itself.
BACKOFF_MAX = timedelta(hours=6)
#: Longest stored error text.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class SourceOutcome:
    """What happened to one source in a run: fresh, fetched, not_modified or failed."""

    state: str
    new_entries: int = 0
    error: str | None = None


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


def freshness(headers: dict[str, str], now: datetime) -> timedelta:
    """How long the response may be reused: Cache-Control max-age or Expires, clamped
    to [FRESHNESS_WINDOW, MAX_FRESHNESS]."""
    lifetime: timedelta | None = None
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            lifetime = timedelta(seconds=int(value.strip()))
    if lifetime is None and headers.get("expires"):
        lifetime = _seconds_header(headers.get("expires"), now)
    return min(MAX_FRESHNESS, max(FRESHNESS_WINDOW, lifetime or FRESHNESS_WINDOW))


def backoff(failures: int, retry_after: timedelta | None = None) -> timedelta:
    """Delay before retrying a source that failed ``failures`` times in a row."""
    delay: timedelta = BACKOFF_BASE * int(2 ** min(failures - 1, 20))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, BACKOFF_MAX)


def claim_source(session: Session, source_id: str, now: datetime) -> bool:
    """Take the source for fetching if it is due; False = fresh or another run has it."""
    claimed = session.execute(
        update(Source)
        .where(Source.id == source_id, or_(Source.nextFetchAt.is_(None), Source.nextFetchAt <= now))
        .values(nextFetchAt=now + FRESHNESS_WINDOW)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


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
    return SourceOutcome("failed", error=error)


def _record_success(source: Source, now: datetime, response: FetchResult) -> None:
    source.status = "ok"
    source.failureCount = 0
    source.lastStatusCode = response.status
    source.lastError = None
    source.lastFetchedAt = now
    source.lastSuccessAt = now
    source.nextFetchAt = now + freshness(dict(response.headers), now)


def refresh_source(
    session: Session,
    source: Source,
    client: GuardedClient,
    now: datetime,
    limiter: HostLimiter | None = None,
) -> SourceOutcome:
    """Fetch ``source`` if due and store its new entries, in the caller's transaction.

    ``limiter`` (the worker process's) spaces and bounds fetches per host.
    """
    if not claim_source(session, source.id, now):
        return SourceOutcome("fresh")
    session.refresh(source)
    headers: dict[str, str] = {
        "Accept": "application/rss+xml, application/atom+xml, "
        "application/feed+json, application/xml;q=0.9, */*;q=0.5"
    }
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.lastModified:
        headers["If-Modified-Since"] = source.lastModified
    try:
        if limiter is None:
            response = client.fetch(source.url, headers=headers)
        else:
            with limiter.slot(urlsplit(source.url).hostname or ""):
                response = client.fetch(source.url, headers=headers)
    except NewsmonError as exc:  # refused, timed out, too large, too many redirects
        return _record_failure(source, now, str(exc), None)
    lowered = {k.lower(): v for k, v in response.headers.items()}
    if response.status == 304:
        _record_success(source, now, response)
        return SourceOutcome("not_modified")
    if response.status != 200:
        retry_after = _seconds_header(lowered.get("retry-after"), now)
        return _record_failure(source, now, f"HTTP {response.status}", response.status, retry_after)
    try:
        feed = parse_feed(response.body, lowered, response.url, source_type=source.type)
    except NewsmonError as exc:  # not a feed: previous entries stay untouched
        return _record_failure(source, now, str(exc), response.status)
    new = store_entries(session, source.id, feed, now)
    _record_success(source, now, response)
    source.etag = lowered.get("etag")
    source.lastModified = lowered.get("last-modified")
    source.title = feed.title or source.title
    if feed.bozo_reason:
        source.lastError = {"warning": feed.bozo_reason[:MAX_ERROR_CHARS], "at": now.isoformat()}
    return SourceOutcome("fetched", new_entries=new)


def describe(outcome: SourceOutcome) -> dict[str, Any]:
    return {"state": outcome.state, "newEntries": outcome.new_entries, "error": outcome.error}
