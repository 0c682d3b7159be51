"""What every digest format shows, decided once: a pure function of the digest, ``now``
and the channel's zone and links (no I/O), which the renderers only lay out.

Stories are grouped by near-duplicate cluster (a lead and its copies' outlets as "also
reported by"), urgent clusters first, otherwise in the digest's order (best score
first). Each story shows its outlet's name, its age and local time in the channel's
zone, a snippet with the query's terms marked, the scorer's one-line reason, and, when
the web process has a public address, signed "Relevant" / "Not relevant" links.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.delivery.digest_links import DigestLinks
from core.delivery.model import AlsoReported, DigestView, StoryView, safe_link
from core.relevance.query import normalize

#: Snippet characters shown per story (cut at a word, with an ellipsis).
MAX_SNIPPET_CHARS = 200
#: Preheader characters (the grey line mail clients show after the subject).
MAX_PREHEADER_CHARS = 140
#: Outlets named in the preheader before "and N more".
PREHEADER_OUTLETS = 3
#: Where "manage this alert" leads: the search in the API's interactive docs.
MANAGE_PATH = "/docs#/news/read_news_news__newsId__get"

#: Between the two ends of a period (an en dash, spaced).
DASH = " \N{EN DASH} "

_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Piece:
    """A run of snippet text; ``hit``: one of the query's terms (shown marked)."""

    text: str
    hit: bool = False


@dataclass(frozen=True)
class FeedbackLinks:
    """The story's two signed feedback links and the tokens they carry (what a Slack
    button sends back instead)."""

    relevant: str
    not_relevant: str
    relevant_token: str = ""
    not_relevant_token: str = ""


@dataclass(frozen=True)
class ShownStory:
    id: str
    title: str
    #: The story's link if it is http(s) (``None``: shown unlinked).
    url: str | None
    raw_url: str
    outlet: str
    age: str
    local_time: str
    snippet: tuple[Piece, ...]
    reason: str
    urgent: bool
    feedback: FeedbackLinks | None
    #: Shown in brief (title, outlet, age): the email's HTML would be too long otherwise.
    brief: bool = False


@dataclass(frozen=True)
class ShownCluster:
    """One event: its stories in the digest (a lead first) and who else reported it."""

    stories: tuple[ShownStory, ...]
    also: tuple[AlsoReported, ...]
    urgent: bool


@dataclass(frozen=True)
class ShownDigest:
    search_name: str
    title: str
    count: int
    period: str
    preheader: str
    zone: str
    clusters: tuple[ShownCluster, ...]
    #: "Manage this alert" (``None`` without a public address).
    manage_url: str | None
    #: One-click unsubscribe of this recipient, or the channel's configured URL.
    unsubscribe_url: str | None
    #: The channel's configured unsubscribe URL when the one-click link is newsmon's own.
    preferences_url: str | None
    news_id: str
    key: str
    #: A health alert (:mod:`core.health`): its items are changes, not stories.
    health: bool = False

    @property
    def counted(self) -> str:
        """The count in words: 3 new stories, or 2 changes in a health alert."""
        one, many = ("change", "changes") if self.health else ("new story", "new stories")
        return f"{self.count} {one if self.count == 1 else many}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # validated on write; a removed zone must not stop a send


def age(published_at: datetime | None, now: datetime) -> str:
    """``5 min ago``, ``2 h ago``, ``3 d ago`` (``just now`` for under a minute or a date
    in the future; ``""`` without a date)."""
    if published_at is None:
        return ""
    seconds = (now - published_at).total_seconds()
    if seconds < _SECONDS_PER_MINUTE:
        return "just now"
    if seconds < _SECONDS_PER_HOUR:
        return f"{int(seconds // _SECONDS_PER_MINUTE)} min ago"
    if seconds < _SECONDS_PER_DAY:
        return f"{int(seconds // _SECONDS_PER_HOUR)} h ago"
    return f"{int(seconds // _SECONDS_PER_DAY)} d ago"


def local_time(value: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """``14:05 CET`` today, ``3 Dec 14:05 CET`` another day, with the year if not this one."""
    if value is None:
        return ""
    here, today = value.astimezone(zone), now.astimezone(zone)
    clock = f"{here:%H:%M} {here.tzname()}"
    if here.date() == today.date():
        return clock
    day = f"{here.day} {here:%b}" + (f" {here.year}" if here.year != today.year else "")
    return f"{day} {clock}"


def period_text(start: datetime | None, end: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """The digest's period in the zone: ``3 Dec 09:00 to 12:00 CET`` (an en dash between)
    or one time."""
    if end is None:
        return ""
    if start is None or start >= end:
        return local_time(end, now, zone)
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() == last.date():
        return f"{first.day} {first:%b} {first:%H:%M}{DASH}{last:%H:%M} {last.tzname()}"
    ends = f"{last.day} {last:%b} {last:%H:%M} {last.tzname()}"
    return f"{first.day} {first:%b} {first:%H:%M}{DASH}{ends}"


def _term_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any of the query's (normalized) terms or phrases as whole words
    of normalized text (``econom*`` matches words starting with ``econom``)."""
    parts = []
    for term in sorted(terms, key=len, reverse=True):
        words = [w for w in term.split() if w.rstrip("*")]
        if not words:
            continue
        parts.append(
            r"\W+".join(
                re.escape(w.rstrip("*")) + (r"\w*" if w.endswith("*") else "") for w in words
            )
        )
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")


def cut(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word with ``…``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,;:.") + "…"


def _normalized(text: str) -> tuple[str, list[int]]:
    """``text`` as the query sees it (casefolded, accents stripped: ``normalize``) and,
    per normalized character, the index of the character of ``text`` it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for at, char in enumerate(text):
        folded = normalize(char)
        chars.append(folded)
        origin.extend([at] * len(folded))
    return "".join(chars), origin


def highlight(text: str, terms: Sequence[str]) -> tuple[Piece, ...]:
    """``text`` split into pieces, the query's terms marked; matched as the query
    matches (``economie`` marks ``Économie``, ``strasse`` marks ``Straße``)."""
    pattern = _term_pattern(terms)
    if not text:
        return ()
    if pattern is None:
        return (Piece(text),)
    folded, origin = _normalized(text)
    pieces: list[Piece] = []
    at = 0
    for match in pattern.finditer(folded):
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        if start < at:
            continue  # inside a character already marked (one that folds to several)
        if start > at:
            pieces.append(Piece(text[at:start]))
        pieces.append(Piece(text[start:end], hit=True))
        at = end
    if at < len(text):
        pieces.append(Piece(text[at:]))
    return tuple(pieces)


def _clusters(stories: Sequence[StoryView]) -> list[list[StoryView]]:
    groups: dict[str, list[StoryView]] = {}
    for story in stories:
        groups.setdefault(story.cluster_id or f"story:{story.id}", []).append(story)
    ordered = list(groups.values())
    # Urgent clusters first; otherwise the digest's own order (sort is stable).
    ordered.sort(key=lambda group: not any(s.urgent for s in group))
    return ordered


def _also(group: Sequence[StoryView]) -> tuple[AlsoReported, ...]:
    shown = {s.outlet or s.source for s in group}
    seen: dict[str, AlsoReported] = {}
    for story in group:
        for other in story.also_reported:
            name = other.name
            if name not in shown and name not in seen:
                seen[name] = other
    return tuple(seen.values())


def _preheader(clusters: Sequence[ShownCluster]) -> str:
    if not clusters:
        return "No new stories."
    lead = clusters[0].stories[0]
    outlets: list[str] = []
    for cluster in clusters:
        for story in cluster.stories:
            if story.outlet and story.outlet not in outlets:
                outlets.append(story.outlet)
    named = ", ".join(outlets[:PREHEADER_OUTLETS])
    more = len(outlets) - PREHEADER_OUTLETS
    source = f" · from {named}" + (f" and {more} more" if more > 0 else "") if named else ""
    return cut(("Urgent: " if lead.urgent else "") + lead.title + source, MAX_PREHEADER_CHARS)


def present(
    digest: DigestView,
    *,
    now: datetime,
    zone: str | None = None,
    links: DigestLinks | None = None,
    channel_id: str = "",
    recipient: str | None = None,
    unsubscribe_url: str | None = None,
) -> ShownDigest:
    """What the digest shows to one channel (and, for email, one recipient).

    ``zone``: the channel's IANA zone (``None``: the search's). ``links``: signs the
    feedback and unsubscribe links (``None``: no public address, so no links; the
    channel's own ``unsubscribe_url`` is still shown).
    """
    tz = _zone(zone or digest.timezone)
    clusters = []
    for group in _clusters(digest.stories):
        shown = []
        for story in group:
            feedback = None
            if links is not None and channel_id and digest.organization_id:
                org = digest.organization_id
                yes = links.feedback_token(org, channel_id, story.id, "relevant", now=now)
                no = links.feedback_token(org, channel_id, story.id, "not_relevant", now=now)
                feedback = FeedbackLinks(
                    relevant=links.link_of(yes),
                    not_relevant=links.link_of(no),
                    relevant_token=yes,
                    not_relevant_token=no,
                )
            shown.append(
                ShownStory(
                    id=story.id,
                    title=" ".join(story.title.split()),
                    url=safe_link(story.url),
                    raw_url=story.url,
                    outlet=story.outlet or story.source,
                    age=age(story.published_at, now),
                    local_time=local_time(story.published_at, now, tz),
                    snippet=highlight(cut(story.snippet, MAX_SNIPPET_CHARS), digest.query_terms),
                    reason=" ".join(story.reason.split()),
                    urgent=story.urgent,
                    feedback=feedback,
                )
            )
        clusters.append(
            ShownCluster(
                stories=tuple(shown), also=_also(group), urgent=any(s.urgent for s in group)
            )
        )
    configured = safe_link(unsubscribe_url) if unsubscribe_url else None
    own = None
    if links is not None and recipient and channel_id and digest.organization_id:
        own = links.unsubscribe_url(digest.organization_id, channel_id, recipient, now=now)
    manage = f"{links.base_url}{MANAGE_PATH}" if links is not None else None
    return ShownDigest(
        search_name=digest.search_name,
        title=digest.title,
        count=len(digest.stories),
        period=period_text(digest.period_start, digest.period_end, now, tz),
        preheader=_preheader(clusters),
        zone=tz.key,
        clusters=tuple(clusters),
        manage_url=manage,
        unsubscribe_url=own or configured,
        preferences_url=configured if own else None,
        news_id=digest.news_id,
        key=digest.key,
        health=bool(digest.health),
    )


def abridge(shown: ShownDigest, keep: int) -> ShownDigest:
    """``shown`` with every story after the first ``keep`` (in showing order) in brief."""
    clusters = []
    position = 0
    for cluster in shown.clusters:
        stories = []
        for story in cluster.stories:
            stories.append(story if position < keep else replace(story, brief=True))
            position += 1
        clusters.append(replace(cluster, stories=tuple(stories)))
    return replace(shown, clusters=tuple(clusters))


#: :func:`present` with the digest, clock, zone and links of one send bound: a sender
#: calls it with ``recipient`` and ``unsubscribe_url`` where the medium has them.
Show = Callable[..., ShownDigest]
