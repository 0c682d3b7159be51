"""Standard 5-field cron expressions as a pure next-fire calculator.

``parse_cron(expr, tz)`` validates and compiles; ``next_fire``/``next_fires`` take ``after``
as an argument and never read the clock; ``describe`` renders a short English phrase.
The APScheduler caveats this works around are listed in ``core.cron.schedule``.
"""

from core.cron.describe import describe
from core.cron.fields import CRON_FIELD, DOW_NAMES, MACROS, MONTH_NAMES
from core.cron.schedule import TIMEZONE_FIELD, CronSchedule, next_fire, next_fires, parse_cron

__all__ = [
    "CRON_FIELD",
    "DOW_NAMES",
    "MACROS",
    "MONTH_NAMES",
    "TIMEZONE_FIELD",
    "CronSchedule",
    "describe",
    "next_fire",
    "next_fires",
    "parse_cron",
]
