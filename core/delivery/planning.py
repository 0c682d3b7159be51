"""Pure digest planning: given ``now``, a search's wait settings and its held stories,
which digests are due, each with a stable ``digestKey``.

No I/O and no clock: the caller passes ``now`` and the stories (held = relevant, not
filtered, in no digest yet). The database's ``UNIQUE (newsId, digestKey)`` makes a
repeated plan a no-op, so keys are what guarantee "one digest per period":

- ``u:<story id>``: urgent stories (score >= ``urgentScore``), sent at once, even in
  quiet hours; keyed by their first story, which then leaves the held set.
- ``i:<story id>``: ``immediate`` mode, everything held, keyed by its first story.
- ``d:<local wall time>``: ``digest`` mode at an interval or cron boundary. The key is the
  boundary's *wall-clock* time in the settings' zone, so the two occurrences of a repeated
  hour at a DST fall-back share one key and yield one digest; stories found in the
  second occurrence wait for the next boundary.
- ``w:<story id>``: ``digest`` mode, the oldest held story waited ``maxWaitMinutes``.

A digest is due at a boundary only if a held story was found before it (a story found
just after a boundary waits for the next one) and at least ``minStories`` are held.
Quiet hours hold everything but urgent stories until they end. More than
``maxPerDigest`` stories become several parts: ``<key>/2``, ``<key>/3``, ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.cron import parse_cron
from core.delivery.wait_settings import QuietHours, WaitSettings

#: Cron boundaries walked at most from the oldest held story to ``now`` before jumping
#: to the last day (a ``* * * * *`` digest held for weeks would otherwise walk forever).
MAX_CRON_STEPS = 2000
#: How far back the jump looks for the latest cron boundary.
CRON_JUMP_BACK = timedelta(days=8)
#: Wall-clock format of a boundary in a ``d:`` key (minute precision, no offset).
WALL_KEY_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class HeldStory:
    """A story waiting for a digest: id (time-ordered), when found, relevance score."""

    id: str
    found_at: datetime
    score: float


@dataclass(frozen=True)
class PlannedDigest:
    """A digest to create now: its key, the period it covers, its stories in order."""

    key: str
    period_start: datetime
    period_end: datetime
    story_ids: tuple[str, ...]
    reason: str


def in_quiet_hours(now: datetime, quiet: QuietHours | None) -> bool:
    """Whether aware ``now`` falls in the quiet hours (local time; may span midnight)."""
    if quiet is None:
        return False
    local = now.astimezone(ZoneInfo(quiet.timezone)).time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def _wall_key(boundary: datetime, zone: ZoneInfo) -> str:
    return boundary.astimezone(zone).strftime(WALL_KEY_FORMAT)


def latest_interval_boundary(now: datetime, settings: WaitSettings) -> datetime:
    """The latest interval boundary at or before ``now``: a wall-clock multiple of the
    interval from local midnight, as an instant (first occurrence if repeated)."""
    zone = ZoneInfo(settings.timezone)
    local = now.astimezone(zone)
    minutes = local.hour * 60 + local.minute
    start = minutes - minutes % settings.interval
    wall = datetime.combine(local.date(), time(start // 60, start % 60))
    boundary = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # A wall time in a spring-forward gap maps past the gap: never after ``now``.
    return min(boundary, now)


def latest_cron_boundary(now: datetime, settings: WaitSettings, since: datetime) -> datetime | None:
    """The latest cron fire in ``(since, now]``, or None if there is none."""
    assert settings.cron is not None
    schedule = parse_cron(settings.cron, settings.timezone)
    fire = schedule.next_fire(since)
    if fire > now:
        return None
    for _ in range(MAX_CRON_STEPS):
        following = schedule.next_fire(fire)
        if following > now:
            return fire
        fire = following
    fire = schedule.next_fire(max(since, now - CRON_JUMP_BACK))
    while (following := schedule.next_fire(fire)) <= now:
        fire = following
    return fire


def _parts(
    key: str, stories: Sequence[HeldStory], end: datetime, reason: str, per_digest: int
) -> list[PlannedDigest]:
    ordered = sorted(stories, key=lambda s: (s.found_at, s.id))
    chunks = [ordered[i : i + per_digest] for i in range(0, len(ordered), per_digest)]
    planned = []
    for number, chunk in enumerate(chunks, start=1):
        by_score = sorted(chunk, key=lambda s: (-s.score, s.found_at, s.id))
        planned.append(
            PlannedDigest(
                key=key if number == 1 else f"{key}/{number}",
                period_start=chunk[0].found_at,
                period_end=end,
                story_ids=tuple(s.id for s in by_score),
                reason=reason,
            )
        )
    return planned


def _first_id(stories: Sequence[HeldStory]) -> str:
    return min(stories, key=lambda s: (s.found_at, s.id)).id


def plan_digests(
    now: datetime, settings: WaitSettings, held: Sequence[HeldStory]
) -> list[PlannedDigest]:
    """The digests due at ``now`` for ``held`` stories (empty: keep holding)."""
    if not held:
        return []
    per = settings.maxPerDigest
    urgent: list[HeldStory] = []
    if settings.urgentScore is not None:
        urgent = [s for s in held if s.score >= settings.urgentScore]
    rest = [s for s in held if s not in urgent]
    planned = _parts(f"u:{_first_id(urgent)}", urgent, now, "urgent", per) if urgent else []
    if not rest or in_quiet_hours(now, settings.quietHours):
        return planned
    if settings.mode == "immediate":
        return planned + _parts(f"i:{_first_id(rest)}", rest, now, "immediate", per)

    oldest = min(s.found_at for s in rest)
    if settings.cron is not None:
        boundary = latest_cron_boundary(now, settings, since=oldest)
    else:
        boundary = latest_interval_boundary(now, settings)
    at_boundary = boundary is not None and oldest < boundary
    if at_boundary and boundary is not None and len(rest) >= settings.minStories:
        key = f"d:{_wall_key(boundary, ZoneInfo(settings.timezone))}"
        return planned + _parts(key, rest, boundary, "digest", per)
    waited = settings.maxWaitMinutes is not None and oldest <= now - timedelta(
        minutes=settings.maxWaitMinutes
    )
    if waited:
        return planned + _parts(f"w:{_first_id(rest)}", rest, now, "max wait", per)
    return planned
