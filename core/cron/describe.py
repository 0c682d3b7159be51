"""Cron expressions in plain English, for the API to show next to a schedule."""

from __future__ import annotations

from core.cron.fields import SPECS, Element, Field, Spec, parse_fields

#: ``describe`` lists explicit times ("at 09:00 and 17:00") up to this many combinations.
MAX_LISTED_TIMES = 6
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


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _word(spec: Spec, value: int) -> str:
    if spec.name == "month":
        return _MONTH_WORDS[value - 1]
    if spec.name == "day-of-week":
        return _DOW_WORDS[value % 7]
    return str(value)


def _element_text(spec: Spec, element: Element) -> str:
    span = f"{_word(spec, element.first)} through {_word(spec, element.last)}"
    if element.single:
        return _word(spec, element.first)
    if element.step == 1:
        return span
    every = f"every {_ordinal(element.step)} {spec.name}"
    return every if element.star else f"{every} from {span}"


def _items(spec: Spec, fld: Field) -> str:
    if spec.name in ("month", "day-of-week") and any(e.step > 1 for e in fld.elements):
        return _join([_word(spec, v) for v in sorted(fld.values)])  # "*/2" reads better listed
    return _join([_element_text(spec, e) for e in fld.elements])


def _noun(spec: Spec, fld: Field) -> str:
    """``"minute "``/``"minutes "`` before plain values; nothing before "every 5th minute"."""
    if any(e.step > 1 for e in fld.elements):
        return ""
    return f"{spec.name} " if len(fld.values) == 1 else f"{spec.name}s "


def _time_text(minute: Field, hour: Field) -> str:
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
        text = f"at {_noun(SPECS[0], minute)}{_items(SPECS[0], minute)}"
    if hour.every:
        return text if periodic else f"{text} past every hour"
    if len(hour.elements) == 1 and hour.elements[0].star:
        return f"{text} past every {_ordinal(hour.elements[0].step)} hour"
    return f"{text} past {_noun(SPECS[1], hour)}{_items(SPECS[1], hour)}"


def describe(expr: str) -> str:
    """A short English description: ``"0 9 * * 0"`` -> ``"at 09:00 on Sunday"``."""
    minute, hour, days, months, weekdays = parse_fields(expr)
    parts = [_time_text(minute, hour)]
    day_text = f"on day-of-month {_items(SPECS[2], days)}"
    if days.star and not days.every:
        day_text = f"on {_items(SPECS[2], days)}"
    weekday_text = f"on {_items(SPECS[4], weekdays)}"
    if not days.every and not weekdays.every:
        joiner = " if it is also " if days.star or weekdays.star else " or on "
        parts.append(day_text + joiner + weekday_text.removeprefix("on "))
    elif not days.every:
        parts.append(day_text)
    elif not weekdays.every:
        parts.append(weekday_text)
    if not months.every:
        parts.append(f"in {_items(SPECS[3], months)}")
    return " ".join(parts)
