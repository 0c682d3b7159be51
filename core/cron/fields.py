"""Parsing the five fields of a cron expression (Sunday = 0 = 7, Vixie rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ValidationError

#: Field name used in validation errors about the expression.
CRON_FIELD = "cronExpr"
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
#: Month names accepted in the month field (jan = 1).
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: Weekday names accepted in the day-of-week field, in cron numbering (sun = 0 = 7).
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: Days in each month in the longest year (February 29 does occur, in leap years).
_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ELEMENT = re.compile(r"^(?P<start>\*|[0-9a-z]+)(?:-(?P<end>[0-9a-z]+))?(?:/(?P<step>[^/]*))?$")


@dataclass(frozen=True)
class Spec:
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
                raise invalid(
                    f"{self.name} field {text!r}: value {number} is out of range "
                    f"{self.low}-{self.high}"
                )
            return number
        if token in self.names:
            return self.names.index(token) + self.name_base
        allowed = f"{self.low}-{self.high}"
        if self.names:
            allowed += f" or {self.names[0]}..{self.names[-1]}"
        raise invalid(f"{self.name} field {text!r}: unknown value {token!r} (allowed: {allowed})")


SPECS = (
    Spec("minute", 0, 59),
    Spec("hour", 0, 23),
    Spec("day-of-month", 1, 31),
    Spec("month", 1, 12, MONTH_NAMES, name_base=1),
    Spec("day-of-week", 0, 7, DOW_NAMES, star_high=6),
)


@dataclass(frozen=True)
class Element:
    """One comma-separated item: ``*``, ``a``, ``a-b``, each with an optional ``/step``."""

    first: int
    last: int
    step: int
    star: bool
    single: bool


@dataclass(frozen=True)
class Field:
    """One parsed field: its text, its items, and the values it selects (Sunday = 0)."""

    text: str
    elements: tuple[Element, ...]
    values: frozenset[int]

    @property
    def star(self) -> bool:
        """Starts with ``*`` (Vixie cron's test for an unrestricted day field)."""
        return self.text.startswith("*")

    @property
    def every(self) -> bool:
        return self.text == "*"


def invalid(message: str) -> ValidationError:
    return ValidationError(message, field=CRON_FIELD)


def parse_element(spec: Spec, item: str, text: str) -> Element:
    match = _ELEMENT.match(item)
    if not match:
        raise invalid(f"{spec.name} field {text!r}: cannot parse {item!r}")
    start, end, step_text = match["start"], match["end"], match["step"]
    step = 1
    if step_text is not None:
        span = (spec.star_high or spec.high) - spec.low
        if not step_text.isdigit() or not 1 <= int(step_text) <= span:
            raise invalid(
                f"{spec.name} field {text!r}: step {step_text!r} must be a number from 1 to {span}"
            )
        step = int(step_text)
    if start == "*":
        if end is not None:
            raise invalid(f"{spec.name} field {text!r}: cannot parse {item!r}")
        return Element(spec.low, spec.star_high or spec.high, step, star=True, single=False)
    first = spec.value(start, text)
    last = spec.value(end, text) if end is not None else first
    if end is None and step_text is not None:
        last = spec.star_high or spec.high  # ``a/n``: from a to the end, as ``*/n`` would
    if first > last:
        raise invalid(f"{spec.name} field {text!r}: range {item!r} runs backwards")
    return Element(first, last, step, star=False, single=end is None and step_text is None)


def parse_field(spec: Spec, text: str) -> Field:
    elements = tuple(parse_element(spec, item, text) for item in text.split(","))
    values = {v for e in elements for v in range(e.first, e.last + 1, e.step)}
    if spec.name == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return Field(text, elements, frozenset(values))


def parse_fields(expr: str) -> tuple[Field, ...]:
    text = " ".join(expr.lower().split())
    if not text:
        raise invalid("cron expression is empty")
    if text.startswith("@"):
        if text not in MACROS:
            raise invalid(f"unknown macro {text!r} (allowed: {', '.join(MACROS)})")
        text = MACROS[text]
    parts = text.split(" ")
    if len(parts) != len(SPECS):
        raise invalid(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    fields = tuple(parse_field(spec, part) for spec, part in zip(SPECS, parts, strict=True))
    days, months = fields[2], fields[3]
    if (fields[4].star or days.star) and not days_occur(days, months):
        raise invalid(f"day-of-month field {days.text!r} never occurs in month {months.text!r}")
    return fields


def days_occur(days: Field, months: Field) -> bool:
    """Whether some selected day-of-month exists in some selected month (Feb 30 does not)."""
    return any(day <= _MAX_DAYS[month - 1] for day in days.values for month in months.values)
