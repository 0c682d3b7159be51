"""The one digest model every renderer reads, loaded from the frozen digest rows.

A story's "also reported by" lists its copies sent with it instead of on their own
(``duplicateOfId`` points at the story shown), so a digest shows a syndicated story once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Digest, DigestStory, Entry, News, Source, Story
from core.delivery.wait_settings import parse_wait_settings
from core.errors import NotFound, ValidationError
from core.relevance.matching import positive_terms
from core.relevance.query import QuerySyntaxError, parse_query

#: Other sources shown per story under "also reported by".
MAX_ALSO_REPORTED = 5
#: Characters of a feed's title kept as an outlet's name.
MAX_OUTLET_CHARS = 60


def outlet_name(feed_title: str | None, source_type: str | None, host: str | None) -> str:
    """The name readers know an outlet by: its feed's title for a feed of its own; the
    site's host (without ``www.``) for a story from a news-search provider (whose feed
    title names the provider, not the outlet) or a feed without a title."""
    title = " ".join((feed_title or "").split())
    if source_type == "feed" and title:
        return title if len(title) <= MAX_OUTLET_CHARS else title[: MAX_OUTLET_CHARS - 1] + "…"
    return (host or "").removeprefix("www.")


@dataclass(frozen=True)
class AlsoReported:
    """Another outlet's copy: ``source`` its host (as the webhook payload has always
    carried it), ``outlet`` the name readers know it by (``""``: the host)."""

    source: str
    url: str
    outlet: str = ""

    @property
    def name(self) -> str:
        return self.outlet or self.source or self.url


@dataclass(frozen=True)
class StoryView:
    """A story as every medium shows it (plain text: each renderer escapes it)."""

    id: str
    title: str
    url: str
    snippet: str
    source: str
    published_at: datetime | None
    score: float
    also_reported: tuple[AlsoReported, ...] = ()
    #: One line saying why the story scored as it did (``""``: scored before reasons).
    reason: str = ""
    #: Its near-duplicate cluster (its first story's id; ``""``: none).
    cluster_id: str = ""
    #: Scored at or above the search's ``urgentScore``: shown first, marked urgent.
    urgent: bool = False
    #: The outlet's name (:func:`outlet_name`); ``source`` stays the host.
    outlet: str = ""


@dataclass(frozen=True)
class HealthChange:
    """One change a health alert tells (:mod:`core.health`): ``subject`` is ``source``,
    ``channel`` or ``news``; ``state`` ``failing`` or ``ok`` (recovered); ``error`` its
    last error, or for ``ok`` why it is no longer watched (``""``: it works again)."""

    subject: str
    subject_id: str
    name: str
    state: str
    error: str
    since: datetime
    url: str = ""


@dataclass(frozen=True)
class DigestView:
    """A digest of one search: who, what period, which stories in order.

    A health alert travels as a digest too (every sender and renderer reads this one
    model): its ``health`` lists the changes, its stories say them in words and
    ``heading`` replaces the story-count title.
    """

    id: str
    organization_id: str
    news_id: str
    search_name: str
    key: str
    created_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    stories: tuple[StoryView, ...] = field(default=())
    #: The query's terms and phrases (``econom*`` as is), highlighted in snippets.
    query_terms: tuple[str, ...] = ()
    #: IANA zone of the search's wait settings (a channel's own zone overrides it).
    timezone: str = "UTC"
    #: The changes of a health alert (empty: a digest of stories).
    health: tuple[HealthChange, ...] = ()
    #: Title shown instead of "<search>: N new stories" (health alerts).
    heading: str = ""

    @property
    def title(self) -> str:
        if self.heading:
            return self.heading
        count = len(self.stories)
        return f"{self.search_name}: {count} new stor{'y' if count == 1 else 'ies'}"


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def load_digest(session: Session, organization_id: str, digest_id: str) -> DigestView:
    """The digest ``digest_id`` of ``organization_id`` with its frozen stories in order."""
    found = session.execute(
        select(Digest, News)
        .join(News, (News.organizationId == Digest.organizationId) & (News.id == Digest.newsId))
        .where(Digest.organizationId == organization_id, Digest.id == digest_id)
    ).one_or_none()
    if found is None:
        raise NotFound(f"digest {digest_id} not found")
    digest, news = found
    urgent_score, timezone = _urgency_and_zone(news)
    outlet = (Source.title, Source.type)
    rows = session.execute(
        select(Story, *outlet)
        .join(DigestStory, DigestStory.storyId == Story.id)
        .outerjoin(Entry, Entry.id == Story.entryId)
        .outerjoin(Source, Source.id == Entry.sourceId)
        .where(DigestStory.digestId == digest.id, Story.organizationId == organization_id)
        .order_by(DigestStory.position)
    ).all()
    ids = [row.id for row, _, _ in rows]
    also: dict[str, list[AlsoReported]] = {}
    if ids:
        copies = session.execute(
            select(Story.duplicateOfId, Story.sourceName, Story.url, *outlet)
            .outerjoin(Entry, Entry.id == Story.entryId)
            .outerjoin(Source, Source.id == Entry.sourceId)
            .where(Story.organizationId == organization_id, Story.duplicateOfId.in_(ids))
            .where(Story.id.not_in(ids))
            .order_by(Story.foundAt, Story.id)
        )
        for lead_id, host, url, title, kind in copies:
            items = also.setdefault(lead_id or "", [])
            if len(items) < MAX_ALSO_REPORTED:
                items.append(
                    AlsoReported(source=host or "", url=url, outlet=outlet_name(title, kind, host))
                )
    stories = tuple(
        StoryView(
            id=row.id,
            title=row.title,
            url=row.url,
            snippet=row.snippet or "",
            source=row.sourceName or "",
            outlet=outlet_name(title, kind, row.sourceName),
            published_at=_aware(row.publishedAt),
            score=row.relevanceScore,
            also_reported=tuple(also.get(row.id, ())),
            reason=str((row.explanation or {}).get("reason") or ""),
            cluster_id=row.clusterId or "",
            urgent=urgent_score is not None and row.relevanceScore >= urgent_score,
        )
        for row, title, kind in rows
    )
    return DigestView(
        id=digest.id,
        organization_id=organization_id,
        news_id=digest.newsId,
        search_name=news.name or "",
        key=digest.digestKey,
        created_at=_aware(digest.createdAt) or datetime.now(UTC),
        period_start=_aware(digest.periodStart),
        period_end=_aware(digest.periodEnd),
        stories=stories,
        query_terms=_query_terms(news),
        timezone=timezone,
    )


def _urgency_and_zone(news: News) -> tuple[float | None, str]:
    try:
        settings = parse_wait_settings(news.waitSettings)
    except ValidationError:
        return None, "UTC"  # validated on write; an old row must not stop a delivery
    return settings.urgentScore, settings.timezone


def _query_terms(news: News) -> tuple[str, ...]:
    text = str((news.searchQuery or {}).get("query", "")).strip()
    if not text:
        return ()
    try:
        return tuple(positive_terms(parse_query(text)))
    except QuerySyntaxError:
        return ()


def sample_digest(
    now: datetime, organization_id: str = "", search_name: str = "Sample"
) -> DigestView:
    """A two-story digest for test sends (with characters every medium must escape)."""
    return DigestView(
        id="test-send",
        organization_id=organization_id,
        news_id="",
        search_name=search_name,
        key="test",
        created_at=now,
        period_start=now,
        period_end=now,
        stories=(
            StoryView(
                id="sample-1",
                title="newsmon test: <b>escaping</b> & *formatting* work",
                url="https://example.com/news/1?a=1&b=2",
                snippet="If you can read this, the channel works. <script>alert(1)</script>",
                source="example.com",
                published_at=now,
                score=0.92,
                also_reported=(AlsoReported(source="example.org", url="https://example.org/1"),),
                reason="matched \u201cnewsmon\u201d in the title; <i>your feedback</i> raised it",
            ),
            StoryView(
                id="sample-2",
                title="A second sample story",
                url="https://example.com/news/2",
                snippet="Digests list one story per section.",
                source="example.com",
                published_at=None,
                score=0.5,
                reason="matched \u201csample\u201d in the text",
            ),
        ),
    )


#: Link schemes a rendered digest may carry; anything else (``javascript:``) is dropped.
SAFE_LINK_SCHEMES = ("https://", "http://")


def safe_link(url: str) -> str | None:
    """``url`` if it is an http(s) link, else None (rendered as plain text, unlinked)."""
    return url if url.lower().startswith(SAFE_LINK_SCHEMES) else None


def when(value: datetime | None) -> str:
    """A story time as every medium shows it (UTC, minute precision)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""
