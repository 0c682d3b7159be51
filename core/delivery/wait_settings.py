"""``news.waitSettings``: when a search's new stories go out, validated with pydantic.

::

    {"mode": "digest", "intervalMinutes": 60, "timezone": "Europe/Berlin",
     "minStories": 3, "maxPerDigest": 20, "maxWaitMinutes": 360,
     "quietHours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"},
     "urgentScore": 0.9}

``immediate`` (the default) sends what each run found at once; ``digest`` batches at
interval boundaries (wall-clock multiples of ``intervalMinutes`` from local midnight)
or at ``cron`` times, both read in ``timezone``.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from core.cron import parse_cron
from core.errors import ValidationError

#: Minutes in a day; a digest interval must divide it so boundaries fall at the same
#: wall-clock times every day (use ``cron`` for anything else).
MINUTES_PER_DAY = 1440
#: Most stories one digest may carry (Slack and mail clients choke on more).
MAX_PER_DIGEST_LIMIT = 200
#: Default stories per digest.
DEFAULT_MAX_PER_DIGEST = 50
#: Default digest interval when neither ``intervalMinutes`` nor ``cron`` is given.
DEFAULT_INTERVAL_MINUTES = 60
#: Longest ``maxWaitMinutes``: 30 days.
MAX_WAIT_MINUTES = 30 * MINUTES_PER_DAY


#: Digest intervals accepted: the divisors of a day, in minutes.
INTERVALS = tuple(m for m in range(1, MINUTES_PER_DAY + 1) if MINUTES_PER_DAY % m == 0)
#: A local wall-clock time: ``HH:MM`` or ``HH:MM:SS`` (with a fraction), no offset.
WALL_TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?$"


def _wall_time(value: object) -> object:
    if isinstance(value, str):
        if not re.fullmatch(WALL_TIME_PATTERN, value):
            raise ValueError("must be a local time as HH:MM or HH:MM:SS")
        return time.fromisoformat(value)
    return value


#: A local time of day written as text (numbers and offsets are refused).
WallTime = Annotated[
    time,
    BeforeValidator(_wall_time),
    WithJsonSchema({"type": "string", "pattern": WALL_TIME_PATTERN}),
]
#: An IANA time zone name (``Europe/Berlin``).
ZoneName = Annotated[str, Field(min_length=1, json_schema_extra={"format": "time-zone"})]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


class QuietHours(BaseModel):
    """Local times between which nothing is sent (``start`` > ``end`` spans midnight);
    ``start`` and ``end`` differ."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: WallTime
    end: WallTime
    timezone: ZoneName = "UTC"

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return _zone(value)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


class WaitSettings(BaseModel):
    """When stories go out (``intervalMinutes`` or ``cron``, not both); see the module
    docstring for an example."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "not": {
                "required": ["intervalMinutes", "cron"],
                "properties": {
                    "intervalMinutes": {"type": "integer", "enum": list(INTERVALS)},
                    "cron": {"type": "string", "format": "cron"},
                },
            }
        },
    )

    mode: Literal["immediate", "digest"] = "immediate"
    intervalMinutes: (
        Annotated[int, Field(ge=1, le=MINUTES_PER_DAY, json_schema_extra={"enum": INTERVALS})]
        | None
    ) = None
    cron: Annotated[str, Field(min_length=1, json_schema_extra={"format": "cron"})] | None = None
    timezone: ZoneName = "UTC"
    minStories: int = Field(default=1, ge=1, le=MAX_PER_DIGEST_LIMIT)
    maxPerDigest: int = Field(default=DEFAULT_MAX_PER_DIGEST, ge=1, le=MAX_PER_DIGEST_LIMIT)
    maxWaitMinutes: int | None = Field(default=None, ge=1, le=MAX_WAIT_MINUTES)
    quietHours: QuietHours | None = None
    urgentScore: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return _zone(value)

    @field_validator("intervalMinutes")
    @classmethod
    def _divides_day(cls, value: int | None) -> int | None:
        if value is not None and MINUTES_PER_DAY % value:
            raise ValueError("must divide a day (5, 15, 30, 60, 120, ... 1440); use cron")
        return value

    @model_validator(mode="after")
    def _one_rhythm(self) -> WaitSettings:
        if self.intervalMinutes is not None and self.cron is not None:
            raise ValueError("give intervalMinutes or cron, not both")
        if self.cron is not None:
            try:
                parse_cron(self.cron, self.timezone)
            except ValidationError as exc:
                raise ValueError(f"cron: {exc}".replace("cronExpr: ", "")) from None
        return self

    @property
    def interval(self) -> int:
        """Digest interval in minutes (the default when only the mode was given)."""
        return self.intervalMinutes or DEFAULT_INTERVAL_MINUTES


def parse_wait_settings(raw: dict[str, Any] | None) -> WaitSettings:
    """Validate ``news.waitSettings``; raise :class:`ValidationError` naming the field."""
    try:
        return WaitSettings.model_validate(raw or {})
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        field = f"waitSettings.{where}" if where else "waitSettings"
        raise ValidationError(error["msg"].removeprefix("Value error, "), field=field) from None
