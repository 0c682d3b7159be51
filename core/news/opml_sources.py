"""OPML in and out of an organization's searches: importing a reader's feed list as
sources of a search (with a report of each feed's fate) and exporting every search's
sources as one OPML file.

An import adds feeds, never removes any. Each outline is accepted or refused with a
reason, checked in this order (so at most ``MAX_SOURCES_PER_SEARCH`` names are looked
up): ``invalid_url`` (not an http(s) URL with a host), ``duplicate`` (the search already
follows it, or the file names it twice), ``over_limit`` (the search would follow more
than ``MAX_SOURCES_PER_SEARCH``), ``private_address`` (the host is on a private address:
the check channel targets pass, with the fetcher's allowlist), ``limit_reached`` (a feed
none of the organization's searches follows yet, past its ``maxSources``:
:mod:`core.usage.limits`). A host that does not resolve now is accepted: every fetch
checks the address again when it connects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import News, NewsSource, Source
from core.delivery.destination import check_host
from core.errors import DestinationNotAllowed, FetchError
from core.fetch import GuardPolicy, Resolver
from core.news.editing import update_search
from core.news.opml import ExportedFeed, read_outlines, write_opml
from core.news.search_query import MAX_SOURCES_PER_SEARCH, FeedSource
from core.news.searches import get_search
from core.usage.limits import read_limits

#: Default port of each scheme a feed URL may use.
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ImportedFeed:
    url: str
    title: str | None


@dataclass(frozen=True)
class RefusedFeed:
    url: str
    title: str | None
    reason: str
    message: str


@dataclass
class OpmlReport:
    """What an import did: the feeds added, those refused and why, the sources now."""

    accepted: list[ImportedFeed] = field(default_factory=list)
    refused: list[RefusedFeed] = field(default_factory=list)
    source_count: int = 0


def import_opml(
    session: Session,
    organization_id: str,
    news_id: str,
    document: bytes | str,
    *,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
) -> OpmlReport:
    """Add the feeds of an OPML document to a search's sources; see the module docs.

    Raises :class:`~core.errors.ValidationError` for a document that is not acceptable
    OPML at all (nothing is changed then).
    """
    news = get_search(session, organization_id, news_id)
    outlines = read_outlines(document)
    sources = list(news.searchQuery.get("sources") or [])
    followed = {s.get("url") for s in sources if isinstance(s, dict)}
    room = _source_room(session, organization_id)
    report = OpmlReport()

    def refuse(url: str, title: str | None, reason: str, message: str) -> None:
        report.refused.append(RefusedFeed(url, title, reason, message))

    for outline in outlines:
        try:
            url = FeedSource(url=outline.url).url
        except ValueError as exc:
            message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            refuse(outline.url, outline.title, "invalid_url", message.removeprefix("Value error, "))
            continue
        if url in followed:
            refuse(url, outline.title, "duplicate", "the search already follows this feed")
            continue
        if len(sources) >= MAX_SOURCES_PER_SEARCH:
            refuse(
                url,
                outline.title,
                "over_limit",
                f"a search follows at most {MAX_SOURCES_PER_SEARCH} sources",
            )
            continue
        refusal = _private_address(url, policy, resolver)
        if refusal is not None:
            refuse(url, outline.title, "private_address", refusal)
            continue
        if room is not None and not room.take(url):
            refuse(url, outline.title, "limit_reached", room.message)
            continue
        followed.add(url)
        sources.append({"type": "feed", "url": url})
        report.accepted.append(ImportedFeed(url, outline.title))
    if report.accepted:
        update_search(
            session,
            organization_id,
            news.id,
            {"searchQuery": {**news.searchQuery, "sources": sources}},
        )
    report.source_count = len(sources)
    return report


@dataclass
class _SourceRoom:
    """How many more distinct sources the organization may follow (``maxSources``)."""

    limit: int
    followed: set[str]

    @property
    def message(self) -> str:
        return (
            f"limit maxSources reached: the organization's searches may follow "
            f"{self.limit} distinct sources"
        )

    def take(self, url: str) -> bool:
        """Whether ``url`` fits: one followed already does, a new one while room is left."""
        if url in self.followed:
            return True
        if len(self.followed) >= self.limit:
            return False
        self.followed.add(url)
        return True


def _source_room(session: Session, organization_id: str) -> _SourceRoom | None:
    limit = read_limits(session, organization_id, lock=True).maxSources
    if limit is None:
        return None
    urls = session.scalars(
        select(Source.url)
        .join(NewsSource, NewsSource.sourceId == Source.id)
        .where(NewsSource.organizationId == organization_id)
        .distinct()
    )
    return _SourceRoom(limit, set(urls))


def _private_address(url: str, policy: GuardPolicy, resolver: Resolver | None) -> str | None:
    """Why ``url``'s host may not be fetched, or None."""
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
    except ValueError:
        return "invalid port"
    try:
        check_host(policy, parts.hostname or "", port, resolver)
    except DestinationNotAllowed as exc:
        return str(exc)
    except FetchError:
        return None  # does not resolve now: the fetch checks again when it connects
    return None


def export_opml(session: Session, organization_id: str, *, now: datetime) -> bytes:
    """Every search of the organization as an OPML folder of the sources it follows."""
    rows = session.execute(
        select(News.id, News.name, Source.url, Source.title)
        .join(
            NewsSource,
            (NewsSource.organizationId == News.organizationId) & (NewsSource.newsId == News.id),
        )
        .join(Source, Source.id == NewsSource.sourceId)
        .where(News.organizationId == organization_id)
        .order_by(News.name, News.id, Source.url)
    )
    folders: dict[str, tuple[str, list[ExportedFeed]]] = {}
    for news_id, name, url, title in rows:
        folders.setdefault(news_id, (name, []))[1].append(ExportedFeed(url=url, title=title))
    return write_opml("newsmon sources", folders.values(), created=now)
