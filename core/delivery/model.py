"""The one digest model every renderer reads, loaded from the frozen digest rows.

A story's "also reported by" lists its copies sent with it instead of on their own
(``duplicateOfId`` points at the story shown), so a digest shows a syndicated story once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    FromClause,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

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


_DIGESTS: Table = Digest.__table__  # type: ignore[assignment]
_NEWS: Table = News.__table__  # type: ignore[assignment]
_STORIES: Table = Story.__table__  # type: ignore[assignment]
_LINKS: Table = DigestStory.__table__  # type: ignore[assignment]
_ENTRIES: Table = Entry.__table__  # type: ignore[assignment]
_SOURCES: Table = Source.__table__  # type: ignore[assignment]

#: What a digest view needs of the digest row and its search, labelled: the delivery
#: claim selects these too (see core/delivery/claims.py).
HEAD_COLUMNS = (
    _DIGESTS.c.newsId.label("digest_news_id"),
    _DIGESTS.c.digestKey.label("digest_key"),
    _DIGESTS.c.createdAt.label("digest_created_at"),
    _DIGESTS.c.periodStart.label("digest_period_start"),
    _DIGESTS.c.periodEnd.label("digest_period_end"),
    _NEWS.c.name.label("search_name"),
    _NEWS.c.waitSettings.label("search_wait_settings"),
    _NEWS.c.searchQuery.label("search_query"),
)
#: The digest's search, joined to ``digests``.
SEARCH_OF_DIGEST = and_(
    _NEWS.c.organizationId == _DIGESTS.c.organizationId, _NEWS.c.id == _DIGESTS.c.newsId
)


def _stories_part(
    kind: int, organization_id: ColumnElement[str], condition: ColumnElement[bool], position: Any
) -> Select[Any]:
    return (
        select(
            literal_column(str(kind), Integer).label("kind"),
            position.label("position"),
            _STORIES.c.id,
            _STORIES.c.title,
            _STORIES.c.url,
            _STORIES.c.snippet,
            _STORIES.c.sourceName,
            _STORIES.c.publishedAt,
            _STORIES.c.relevanceScore,
            _STORIES.c.explanation,
            _STORIES.c.clusterId,
            _STORIES.c.duplicateOfId,
            _STORIES.c.foundAt,
            _SOURCES.c.title.label("source_title"),
            _SOURCES.c.type.label("source_type"),
        )
        .select_from(
            # Both parts start from the digest's links: a copy is found by the index on
            # duplicateOfId, never by reading every story of the organization.
            _LINKS.join(
                _STORIES,
                (_STORIES.c.id if kind == 0 else _STORIES.c.duplicateOfId) == _LINKS.c.storyId,
            )
            .outerjoin(_ENTRIES, _ENTRIES.c.id == _STORIES.c.entryId)
            .outerjoin(_SOURCES, _SOURCES.c.id == _ENTRIES.c.sourceId)
        )
        .where(_STORIES.c.organizationId == organization_id, condition)
    )


def digest_stories(
    organization_id: ColumnElement[str], digest_id: ColumnElement[str]
) -> CompoundSelect[Any]:
    """The rows :func:`digest_view` takes as stories, unordered (see :func:`story_order`):
    the digest's stories (``kind`` 0) and their copies sent with them (``kind`` 1)."""
    # Its own links, whatever the enclosing query joins (a batch's lateral correlates).
    story_ids = (
        select(_LINKS.c.storyId).where(_LINKS.c.digestId == digest_id).correlate_except(_LINKS)
    )
    leads = _stories_part(0, organization_id, _LINKS.c.digestId == digest_id, _LINKS.c.position)
    copies = _stories_part(
        1,
        organization_id,
        and_(_LINKS.c.digestId == digest_id, _STORIES.c.id.not_in(story_ids)),
        literal_column("0", Integer),
    )
    return union_all(leads, copies)


def story_order(stories: FromClause) -> tuple[ColumnElement[Any], ...]:
    """Stories in their digest's order, then copies oldest first."""
    c = stories.c
    return (c.kind, c.position, c.foundAt, c.id)


# Built once (see core/db/statements.py): building ORM selects and loading ORM rows cost
# more Python per delivery than the round trips; stories and copies are one round trip.
_DIGEST_HEAD = (
    select(*HEAD_COLUMNS)
    .select_from(_DIGESTS.join(_NEWS, SEARCH_OF_DIGEST))
    .where(
        _DIGESTS.c.organizationId == bindparam("organization_id"),
        _DIGESTS.c.id == bindparam("digest_id"),
    )
)
_stories = digest_stories(bindparam("organization_id"), bindparam("digest_id")).subquery()
_DIGEST_STORIES = select(_stories).order_by(*story_order(_stories))


def load_digest(session: Session | Connection, organization_id: str, digest_id: str) -> DigestView:
    """The digest ``digest_id`` of ``organization_id`` with its frozen stories in order."""
    conn = session.connection() if isinstance(session, Session) else session
    params = {"organization_id": organization_id, "digest_id": digest_id}
    head = conn.execute(_DIGEST_HEAD, params).one_or_none()
    if head is None:
        raise NotFound(f"digest {digest_id} not found")
    return digest_view(organization_id, digest_id, head, read_stories(conn, params))


def read_stories(conn: Connection, params: Mapping[str, str]) -> Sequence[Row[Any]]:
    """The rows :func:`digest_view` takes as stories (``organization_id``, ``digest_id``)."""
    return conn.execute(_DIGEST_STORIES, params).all()


def digest_view(
    organization_id: str, digest_id: str, head: Any, stories: Sequence[Any]
) -> DigestView:
    """The view of a digest from a row with its :data:`HEAD_COLUMNS` and the rows of
    :func:`digest_stories`."""
    urgent_score, timezone = _urgency_and_zone(head.search_wait_settings)
    also: dict[str, list[AlsoReported]] = {}
    leads = []
    for row in stories:
        if row.kind == 0:
            leads.append(row)
            continue
        if row.kind is None:
            continue  # a digest without stories, read with its claim
        items = also.setdefault(row.duplicateOfId or "", [])
        if len(items) < MAX_ALSO_REPORTED:
            host = row.sourceName
            name = outlet_name(row.source_title, row.source_type, host)
            items.append(AlsoReported(source=host or "", url=row.url, outlet=name))
    return DigestView(
        id=digest_id,
        organization_id=organization_id,
        news_id=head.digest_news_id,
        search_name=head.search_name or "",
        key=head.digest_key,
        created_at=_aware(head.digest_created_at) or datetime.now(UTC),
        period_start=_aware(head.digest_period_start),
        period_end=_aware(head.digest_period_end),
        stories=tuple(
            StoryView(
                id=row.id,
                title=row.title,
                url=row.url,
                snippet=row.snippet or "",
                source=row.sourceName or "",
                outlet=outlet_name(row.source_title, row.source_type, row.sourceName),
                published_at=_aware(row.publishedAt),
                score=row.relevanceScore,
                also_reported=tuple(also.get(row.id, ())),
                reason=str((row.explanation or {}).get("reason") or ""),
                cluster_id=row.clusterId or "",
                urgent=urgent_score is not None and row.relevanceScore >= urgent_score,
            )
            for row in leads
        ),
        query_terms=_query_terms(head.search_query),
        timezone=timezone,
    )


def _urgency_and_zone(wait_settings: Any) -> tuple[float | None, str]:
    try:
        settings = parse_wait_settings(wait_settings)
    except ValidationError:
        return None, "UTC"  # validated on write; an old row must not stop a delivery
    return settings.urgentScore, settings.timezone


def _query_terms(search_query: Any) -> tuple[str, ...]:
    text = str((search_query or {}).get("query", "")).strip()
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
