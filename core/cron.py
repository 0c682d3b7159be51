"""Standard 5-field cron expressions as a pure next-fire calculator.

``parse_cron(expr, tz)`` validates and compiles; ``next_fire``/``next_fires`` take ``after``
as an argument and never read the clock; ``describe`` renders a short English phrase.

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

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from core.errors import ValidationError

__all__ = ["CronSchedule", "describe", "next_fire", "next_fires", "parse_cron"]

#: Field name used in validation errors about the expression.
CRON_FIELD = "cronExpr"
#: Field name used in validation errors about the time zone.
TIMEZONE_FIELD = "timezone"
#: Nicknames accepted in place of five fields (as in Vixie cron; ``@reboot`` is not a time).
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Zone keys that ``ZoneInfo`` accepts but that name the host's setting, not an IANA zone.
HOST_DEPENDENT_ZONES = frozenset({"localtime", "posixrules"})
#: How far ahead we look for an offset drop (fall-back) that can make a later instant carry
#: an earlier wall time than ``after``; real offset changes are hours apart, not a day.
FOLD_LOOKAHEAD = timedelta(days=1)
#: ``describe`` lists explicit times ("at 09:00 and 17:00") up to this many combinations.
MAX_LISTED_TIMES = 6

#: Month names accepted in the month field (jan = 1).
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: Weekday names accepted in the day-of-week field, in cron numbering (sun = 0 = 7).
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_WORDS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DOW_WORDS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
#: Days in each month in the longest year (February 29 does occur, in leap years).
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ELEMENT = re.compile(r"^(?P<start>\*|[0-9a-z]+)(?:-(?P<end>[0-9a-z]+))?(?:/(?P<step>[^/]*))?$")


@dataclass(frozen=True)
class _Spec:
    """One cron field's rules: display name, inclusive bounds, names for values."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0
    star_high: int | None = None  # ``*`` for day-of-week spans 0-6 although 7 is allowed

    def value(self, token: str, text: str) -> int:
        if token.isdigit():
            number = int(token)
            if not self.low <= number <= self.high:
                raise _invalid(
                    f"{self.name} field {text!r}: value {number} is out of range "
                    f"{self.low}-{self.high}"
                )
            return number
        if token in self.names:
            return self.names.index(token) + self.name_base
        allowed = f"{self.low}-{self.high}"
        if self.names:
            allowed += f" or {self.names[0]}..{self.names[-1]}"
        raise _invalid(f"{self.name} field {text!r}: unknown value {token!r} (allowed: {allowed})")


_SPECS = (
    _Spec("minute", 0, 59),
    _Spec("hour", 0, 23),
    _Spec("day-of-month", 1, 31),
    _Spec("month", 1, 12, MONTH_NAMES, name_base=1),
    _Spec("day-of-week", 0, 7, DOW_NAMES, star_high=6),
)


@dataclass(frozen=True)
class _Element:
    """One comma-separated item: ``*``, ``a``, ``a-b``, each with an optional ``/step``."""

    first: int
    last: int
    step: int
    star: bool
    single: bool


@dataclass(frozen=True)
class _Field:
    """One parsed field: its text, its items, and the values it selects (Sunday = 0)."""

    text: str
    elements: tuple[_Element, ...]
    values: frozenset[int]

    @property
    def star(self) -> bool:
        """Starts with ``*`` (Vixie cron's test for an unrestricted day field)."""
        return self.text.startswith("*")

    @property
    def every(self) -> bool:
        return self.text == "*"


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, field=CRON_FIELD)


def _parse_element(spec: _Spec, item: str, text: str) -> _Element:
    match = _ELEMENT.match(item)
    if not match:
        raise _invalid(f"{spec.name} field {text!r}: cannot parse {item!r}")
    start, end, step_text = match["start"], match["end"], match["step"]
    step = 1
    if step_text is not None:
        span = (spec.star_high or spec.high) - spec.low
        if not step_text.isdigit() or not 1 <= int(step_text) <= span:
            raise _invalid(
                f"{spec.name} field {text!r}: step {step_text!r} must be a number from 1 to {span}"
            )
        step = int(step_text)
    if start == "*":
        if end is not None:
            raise _invalid(f"{spec.name} field {text!r}: cannot parse {item!r}")
        return _Element(spec.low, spec.star_high or spec.high, step, star=True, single=False)
    first = spec.value(start, text)
    last = spec.value(end, text) if end is not None else first
    if end is None and step_text is not None:
        last = spec.star_high or spec.high  # ``a/n``: from a to the end, as ``*/n`` would
    if first > last:
        raise _invalid(f"{spec.name} field {text!r}: range {item!r} runs backwards")
    return _Element(first, last, step, star=False, single=end is None and step_text is None)


def _parse_field(spec: _Spec, text: str) -> _Field:
    elements = tuple(_parse_element(spec, item, text) for item in text.split(","))
    values = {v for e in elements for v in range(e.first, e.last + 1, e.step)}
    if spec.name == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return _Field(text, elements, frozenset(values))


def _parse_fields(expr: str) -> tuple[_Field, ...]:
    text = " ".join(expr.lower().split())
    if not text:
        raise _invalid("cron expression is empty")
    if text.startswith("@"):
        if text not in MACROS:
            raise _invalid(f"unknown macro {text!r} (allowed: {', '.join(MACROS)})")
        text = MACROS[text]
    parts = text.split(" ")
    if len(parts) != len(_SPECS):
        raise _invalid(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    fields = tuple(_parse_field(spec, part) for spec, part in zip(_SPECS, parts, strict=True))
    days, months = fields[2], fields[3]
    if (fields[4].star or days.star) and not _days_occur(days, months):
        raise _invalid(f"day-of-month field {days.text!r} never occurs in month {months.text!r}")
    return fields


def _days_occur(days: _Field, months: _Field) -> bool:
    """Whether some selected day-of-month exists in some selected month (Feb 30 does not)."""
    return any(day <= _MAX_DAYS[month - 1] for day in days.values for month in months.values)


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


def _wall_trigger(fields: tuple[_Field, ...], day: str, weekday: str) -> CronTrigger:
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


def _compile(fields: tuple[_Field, ...]) -> tuple[CronTrigger, ...]:
    days, weekdays = fields[2], fields[4]
    day = "*" if days.every else _listing(days.values)
    # Names, not numbers: APScheduler 3.x numbers weekdays from Monday = 0.
    weekday = "*" if weekdays.every else ",".join(DOW_NAMES[d] for d in sorted(weekdays.values))
    if days.star or weekdays.star:
        return (_wall_trigger(fields, day, weekday),)
    # Vixie cron ORs two restricted day fields; APScheduler would AND them.
    by_weekday = _wall_trigger(fields, "*", weekday)
    if not _days_occur(days, fields[3]):
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
    fields = _parse_fields(expr)
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


# --- describe -----------------------------------------------------------------------------


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _word(spec: _Spec, value: int) -> str:
    if spec.name == "month":
        return _MONTH_WORDS[value - 1]
    if spec.name == "day-of-week":
        return _DOW_WORDS[value % 7]
    return str(value)


def _element_text(spec: _Spec, element: _Element) -> str:
    span = f"{_word(spec, element.first)} through {_word(spec, element.last)}"
    if element.single:
        return _word(spec, element.first)
    if element.step == 1:
        return span
    every = f"every {_ordinal(element.step)} {spec.name}"
    return every if element.star else f"{every} from {span}"


def _items(spec: _Spec, fld: _Field) -> str:
    if spec.name in ("month", "day-of-week") and any(e.step > 1 for e in fld.elements):
        return _join([_word(spec, v) for v in sorted(fld.values)])  # "*/2" reads better listed
    return _join([_element_text(spec, e) for e in fld.elements])


def _noun(spec: _Spec, fld: _Field) -> str:
    """``"minute "``/``"minutes "`` before plain values; nothing before "every 5th minute"."""
    if any(e.step > 1 for e in fld.elements):
        return ""
    return f"{spec.name} " if len(fld.values) == 1 else f"{spec.name}s "


def _time_text(minute: _Field, hour: _Field) -> str:
    singles = all(e.single for e in minute.elements + hour.elements)
    if singles and len(minute.values) * len(hour.values) <= MAX_LISTED_TIMES:
        times = [f"{h:02d}:{m:02d}" for h in sorted(hour.values) for m in sorted(minute.values)]
        return f"at {_join(times)}"
    periodic = len(minute.elements) == 1 and minute.elements[0].star
    if minute.every:
        text = "every minute"
    elif periodic:
        text = f"every {minute.elements[0].step} minutes"
    else:
        text = f"at {_noun(_SPECS[0], minute)}{_items(_SPECS[0], minute)}"
    if hour.every:
        return text if periodic else f"{text} past every hour"
    if len(hour.elements) == 1 and hour.elements[0].star:
        return f"{text} past every {_ordinal(hour.elements[0].step)} hour"
    return f"{text} past {_noun(_SPECS[1], hour)}{_items(_SPECS[1], hour)}"


def describe(expr: str) -> str:
    """A short English description: ``"0 9 * * 0"`` -> ``"at 09:00 on Sunday"``."""
    minute, hour, days, months, weekdays = _parse_fields(expr)
    parts = [_time_text(minute, hour)]
    day_text = f"on day-of-month {_items(_SPECS[2], days)}"
    if days.star and not days.every:
        day_text = f"on {_items(_SPECS[2], days)}"
    weekday_text = f"on {_items(_SPECS[4], weekdays)}"
    if not days.every and not weekdays.every:
        joiner = " if it is also " if days.star or weekdays.star else " or on "
        parts.append(day_text + joiner + weekday_text.removeprefix("on "))
    elif not days.every:
        parts.append(day_text)
    elif not weekdays.every:
        parts.append(weekday_text)
    if not months.every:
        parts.append(f"in {_items(_SPECS[3], months)}")
    return " ".join(parts)
