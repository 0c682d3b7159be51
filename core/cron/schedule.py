"""Compiled cron schedules in a time zone: next fire times, DST handled here.

APScheduler 3.11's ``CronTrigger`` does the calendar arithmetic, but only on *wall-clock*
time (it runs in UTC, which has no DST); mapping wall times to instants is done here,
because of what we measured in APScheduler 3.11.3:

- ``from_crontab`` takes day-of-week 0 as Monday. We parse every field ourselves and hand
  APScheduler weekday *names*, so 0 and 7 are Sunday and ``*/2`` steps over Sunday-based
  numbering (sun, tue, thu, sat).
- It ANDs day-of-month and day-of-week. Standard (Vixie) cron ORs them when neither field
  starts with ``*``; we then compile two triggers and take the earlier match. A field such
  as ``*/2`` starts with ``*``, so Vixie (and we) AND it with the other field.
- Spring-forward gap: it returns the non-existent wall time (``02:30`` Europe/Berlin on
  2026-03-29 comes back as 01:30 UTC = 03:30 local). We fire once, at the first valid
  instant after the gap (03:00 local = 01:00 UTC).
- Fall-back repeat: ``30 2 * * *`` fires twice on 2026-10-25 in Europe/Berlin. We fire a
  fixed hour once (the first occurrence).

Decision for an hour field of exactly ``*`` (``0 * * * *``, ``*/15 * * * *``): it follows
real time, as Vixie cron does for wildcard jobs: both occurrences of a repeated hour fire
(each real hour once) and wall times inside a gap are skipped, not moved (the hour after the
gap fires as usual). Any other hour field follows the wall clock as described above.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from core.cron.fields import DOW_NAMES, Field, days_occur, parse_fields
from core.errors import ValidationError

#: Field name used in validation errors about the time zone.
TIMEZONE_FIELD = "timezone"
#: Zone keys that ``ZoneInfo`` accepts but that name the host's setting, not an IANA zone.
HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules"})
#: How far ahead we look for an offset drop (fall-back) that can make a later instant carry
#: an earlier wall time than ``after``; real offset changes are hours apart, not a day.
FOLD_LOOKAHEAD = timedelta(days=1)


def _zone(tz: str) -> ZoneInfo:
    if tz in HOST_DEPENDENT_ZONES:
        raise ValidationError(f"{tz!r} is not an IANA time zone name", field=TIMEZONE_FIELD)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)",
            field=TIMEZONE_FIELD,
        ) from None


def _listing(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _wall_trigger(fields: tuple[Field, ...], day: str, weekday: str) -> CronTrigger:
    minute, hour, _, month, _ = fields
    return CronTrigger(
        minute="*" if minute.every else _listing(minute.values),
        hour="*" if hour.every else _listing(hour.values),
        day=day,
        month="*" if month.every else _listing(month.values),
        day_of_week=weekday,
        second=0,
        timezone=UTC,  # a DST-free zone: the trigger computes wall-clock times only
    )


def _compile(fields: tuple[Field, ...]) -> tuple[CronTrigger, ...]:
    days, weekdays = fields[2], fields[4]
    day = "*" if days.every else _listing(days.values)
    # Names, not numbers: APScheduler 3.x numbers weekdays from Monday = 0.
    weekday = "*" if weekdays.every else ",".join(DOW_NAMES[d] for d in sorted(weekdays.values))
    if days.star or weekdays.star:
        return (_wall_trigger(fields, day, weekday),)
    # Vixie cron ORs two restricted day fields; APScheduler would AND them.
    by_weekday = _wall_trigger(fields, "*", weekday)
    if not days_occur(days, fields[3]):
        return (by_weekday,)  # "30 2 1": only the Mondays of February can ever match
    return (_wall_trigger(fields, day, "*"), by_weekday)


def _gap_end(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """First instant in ``(before, after]`` whose UTC offset differs from ``before``'s."""
    offset = before.astimezone(zone).utcoffset()
    low, high = 0, int((after - before).total_seconds())  # TZif transitions are whole seconds
    while high - low > 1:
        middle = (low + high) // 2
        if (before + timedelta(seconds=middle)).astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return before + timedelta(seconds=high)


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression bound to an IANA time zone.

    Parameters:
      expr: the expression as given (macros allowed).
      timezone: the IANA zone name the expression's wall-clock times are read in.
    """

    expr: str
    timezone: str
    zone: ZoneInfo = field(repr=False)
    follows_real_time: bool = field(repr=False)
    triggers: tuple[CronTrigger, ...] = field(repr=False, compare=False)

    def _next_wall(self, wall: datetime) -> datetime:
        """First matching naive wall-clock time strictly after naive ``wall``."""
        now = wall.replace(tzinfo=UTC) + timedelta(microseconds=1)
        found = [t.get_next_fire_time(None, now) for t in self.triggers]
        found = [f for f in found if f is not None]  # None only past APScheduler's year 9999
        if not found:
            raise ValueError(f"{self.expr!r} has no fire time after {wall.isoformat()}")
        return min(found).replace(tzinfo=None)  # type: ignore[no-any-return]

    def _instants(self, wall: datetime) -> Iterator[datetime]:
        """The UTC instants at which naive local ``wall`` fires (none, one or two)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            yield first
        elif first.astimezone(self.zone).replace(tzinfo=None) == wall:  # repeated wall time
            yield first
            if self.follows_real_time:
                yield second
        elif not self.follows_real_time:  # in a spring-forward gap
            yield _gap_end(self.zone, second, first)

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after aware ``after``, as an aware UTC datetime."""
        if after.utcoffset() is None:
            raise ValueError("after must be timezone-aware")
        after = after.astimezone(UTC)
        # A later instant's wall time is at least ``after`` + the lowest offset soon after.
        lowest = min(self._offset(after), self._offset(after + FOLD_LOOKAHEAD))
        wall = (after + lowest).replace(tzinfo=None)
        best: datetime | None = None
        while True:
            wall = self._next_wall(wall)
            if best is not None:
                highest = max(self._offset(after), self._offset(best))
                if (wall - highest).replace(tzinfo=UTC) >= best:
                    return best  # no later wall time can map to an earlier instant
            for instant in self._instants(wall):
                if instant > after and (best is None or instant < best):
                    best = instant

    def next_fires(self, after: datetime, n: int) -> list[datetime]:
        """The next ``n`` fire times strictly after ``after``, increasing, in UTC."""
        fires: list[datetime] = []
        for _ in range(n):
            after = self.next_fire(after)
            fires.append(after)
        return fires

    def _offset(self, instant: datetime) -> timedelta:
        """The zone's UTC offset at aware ``instant`` (local wall time minus UTC)."""
        utc = instant.astimezone(UTC)
        return utc.astimezone(self.zone).replace(tzinfo=None) - utc.replace(tzinfo=None)


def parse_cron(expr: str, tz: str) -> CronSchedule:
    """Validate ``expr`` and ``tz``; raise ``ValidationError`` naming the bad field."""
    fields = parse_fields(expr)
    return CronSchedule(
        expr=expr,
        timezone=tz,
        zone=_zone(tz),
        follows_real_time=fields[1].every,
        triggers=_compile(fields),
    )


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """The first fire time of ``expr`` in ``tz`` strictly after ``after`` (aware, UTC)."""
    return parse_cron(expr, tz).next_fire(after)


def next_fires(expr: str, tz: str, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` fire times of ``expr`` in ``tz`` strictly after ``after``."""
    return parse_cron(expr, tz).next_fires(after, n)
