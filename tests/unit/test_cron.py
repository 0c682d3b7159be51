"""core.cron: standard cron semantics, DST handling and validation, as specifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from core.cron import CronSchedule, describe, next_fire, next_fires, parse_cron
from core.errors import ValidationError

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    """``"2026-03-29 01:00"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M%z")


# --- weekdays, names, lists ---------------------------------------------------------------

# 2026-01-01 is a Thursday.
NEW_YEAR = utc("2026-01-01 00:00")


@pytest.mark.parametrize(
    ("expr", "expected_local"),
    [
        ("0 9 * * 0", ["Sun 2026-01-04 09:00+0000", "Sun 2026-01-11 09:00+0000"]),
        ("0 9 * * 7", ["Sun 2026-01-04 09:00+0000", "Sun 2026-01-11 09:00+0000"]),
        ("0 9 * * sun", ["Sun 2026-01-04 09:00+0000", "Sun 2026-01-11 09:00+0000"]),
        ("0 9 * * SUN", ["Sun 2026-01-04 09:00+0000", "Sun 2026-01-11 09:00+0000"]),
        (
            "0 9 * * */2",
            [
                "Thu 2026-01-01 09:00+0000",
                "Sat 2026-01-03 09:00+0000",
                "Sun 2026-01-04 09:00+0000",
                "Tue 2026-01-06 09:00+0000",
            ],
        ),
        (
            "0 9 * * 5-7",
            [
                "Fri 2026-01-02 09:00+0000",
                "Sat 2026-01-03 09:00+0000",
                "Sun 2026-01-04 09:00+0000",
                "Fri 2026-01-09 09:00+0000",
            ],
        ),
        (
            "0 9 * * 0-6",
            [
                "Thu 2026-01-01 09:00+0000",
                "Fri 2026-01-02 09:00+0000",
                "Sat 2026-01-03 09:00+0000",
                "Sun 2026-01-04 09:00+0000",
            ],
        ),
        (
            "0 9 * * mon-fri",
            [
                "Thu 2026-01-01 09:00+0000",
                "Fri 2026-01-02 09:00+0000",
                "Mon 2026-01-05 09:00+0000",
            ],
        ),
        (
            "0 9 * * 1,3",
            ["Mon 2026-01-05 09:00+0000", "Wed 2026-01-07 09:00+0000"],
        ),
        ("0 9 1 mar,jun *", ["Sun 2026-03-01 09:00+0000", "Mon 2026-06-01 09:00+0000"]),
        ("0 0 1 */3 *", ["Wed 2026-04-01 00:00+0000", "Wed 2026-07-01 00:00+0000"]),
        (
            "0 9 * * 1/2",
            ["Fri 2026-01-02 09:00+0000", "Mon 2026-01-05 09:00+0000", "Wed 2026-01-07 09:00+0000"],
        ),
        ("0 0 29 feb *", ["Tue 2028-02-29 00:00+0000", "Sun 2032-02-29 00:00+0000"]),
        ("@weekly", ["Sun 2026-01-04 00:00+0000", "Sun 2026-01-11 00:00+0000"]),
        ("@monthly", ["Sun 2026-02-01 00:00+0000", "Sun 2026-03-01 00:00+0000"]),
        ("@yearly", ["Fri 2027-01-01 00:00+0000", "Sat 2028-01-01 00:00+0000"]),
        (
            "10-20/5 8 * * *",
            [
                "Thu 2026-01-01 08:10+0000",
                "Thu 2026-01-01 08:15+0000",
                "Thu 2026-01-01 08:20+0000",
                "Fri 2026-01-02 08:10+0000",
            ],
        ),
    ],
)
def test_fields_follow_standard_cron_numbering_and_names(
    expr: str, expected_local: list[str]
) -> None:
    fires = next_fires(expr, "UTC", NEW_YEAR, len(expected_local))
    assert [local(f, "UTC") for f in fires] == expected_local


def test_weekdays_only_never_fire_on_a_weekend() -> None:
    fires = next_fires("* * * * 1-5", "UTC", utc("2026-01-02 23:57"), 4)
    assert [local(f, "UTC") for f in fires] == [
        "Fri 2026-01-02 23:58+0000",
        "Fri 2026-01-02 23:59+0000",
        "Mon 2026-01-05 00:00+0000",
        "Mon 2026-01-05 00:01+0000",
    ]


@pytest.mark.parametrize(
    ("expr", "expected_local"),
    [
        # Day 13 OR Friday (Vixie cron: both restricted, so either matches).
        (
            "0 9 13 * 5",
            [
                "Fri 2026-01-02 09:00+0000",
                "Fri 2026-01-09 09:00+0000",
                "Tue 2026-01-13 09:00+0000",
                "Fri 2026-01-16 09:00+0000",
            ],
        ),
        (
            "0 0 1,15 * sun",
            [
                "Sun 2026-01-04 00:00+0000",
                "Sun 2026-01-11 00:00+0000",
                "Thu 2026-01-15 00:00+0000",
                "Sun 2026-01-18 00:00+0000",
            ],
        ),
        # A day field starting with "*" makes Vixie cron AND the two: odd days that are Mondays.
        (
            "0 9 */2 * 1",
            ["Mon 2026-01-05 09:00+0000", "Mon 2026-01-19 09:00+0000"],
        ),
        (
            "0 9 1 * */6",
            [
                "Sun 2026-02-01 09:00+0000",
                "Sun 2026-03-01 09:00+0000",
                "Sat 2026-08-01 09:00+0000",
            ],
        ),
    ],
)
def test_day_of_month_and_day_of_week_follow_vixie_semantics(
    expr: str, expected_local: list[str]
) -> None:
    fires = next_fires(expr, "UTC", NEW_YEAR, len(expected_local))
    assert [local(f, "UTC") for f in fires] == expected_local


# --- DST -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "after", "expected_utc"),
    [
        # Spring forward, Berlin 2026-03-29 02:00 -> 03:00: 02:30 fires once, at 03:00 local.
        (
            "30 2 * * *",
            BERLIN,
            "2026-03-27 12:00",
            ["2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"],
        ),
        # Every wall time inside the gap collapses to one fire at the end of the gap.
        (
            "*/15 2 * * *",
            BERLIN,
            "2026-03-28 23:00",
            ["2026-03-29 01:00", "2026-03-30 00:00", "2026-03-30 00:15"],
        ),
        # Fall back, Berlin 2026-10-25 03:00 -> 02:00: a fixed 02:30 fires once (the first).
        (
            "30 2 * * *",
            BERLIN,
            "2026-10-23 12:00",
            ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"],
        ),
        (
            "*/30 2 * * *",
            BERLIN,
            "2026-10-24 22:00",
            ["2026-10-25 00:00", "2026-10-25 00:30", "2026-10-26 01:00"],
        ),
        # Hour "*" follows real time: each real hour fires once, on both sides of the change.
        (
            "0 * * * *",
            BERLIN,
            "2026-10-24 22:30",
            ["2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 02:00"],
        ),
        (
            "0 * * * *",
            BERLIN,
            "2026-03-28 23:30",
            ["2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 02:00"],
        ),
        (
            "30 * * * *",
            BERLIN,
            "2026-03-28 23:45",
            ["2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"],
        ),
        # New York 2026-03-08 02:00 -> 03:00 and 2026-11-01 02:00 -> 01:00.
        (
            "30 2 * * *",
            NEW_YORK,
            "2026-03-07 12:00",
            ["2026-03-08 07:00", "2026-03-09 06:30", "2026-03-10 06:30"],
        ),
        (
            "30 1 * * *",
            NEW_YORK,
            "2026-10-31 12:00",
            ["2026-11-01 05:30", "2026-11-02 06:30", "2026-11-03 06:30"],
        ),
        (
            "0 * * * *",
            NEW_YORK,
            "2026-11-01 04:30",
            ["2026-11-01 05:00", "2026-11-01 06:00", "2026-11-01 07:00"],
        ),
        (
            "0 * * * *",
            NEW_YORK,
            "2026-03-08 05:30",
            ["2026-03-08 06:00", "2026-03-08 07:00", "2026-03-08 08:00"],
        ),
        # Lord Howe springs forward only 30 minutes (2026-10-04 02:00 -> 02:30).
        ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03 00:00", ["2026-10-03 15:30"]),
    ],
)
def test_dst_gaps_fire_once_at_first_valid_instant_and_repeats_fire_once(
    expr: str, tz: str, after: str, expected_utc: list[str]
) -> None:
    fires = next_fires(expr, tz, utc(after), len(expected_utc))
    assert fires == [utc(text) for text in expected_utc]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Exactly at a fire time: the next one, never the same.
        ("2026-10-25 00:30", "2026-10-26 01:30"),
        # Inside the repeated hour, after its first 02:30: not again at the second 02:30.
        ("2026-10-25 00:40", "2026-10-26 01:30"),
        ("2026-10-25 01:10", "2026-10-26 01:30"),
        ("2026-03-29 01:00", "2026-03-30 00:30"),
        ("2026-03-29 00:59:59.999999", "2026-03-29 01:00"),
    ],
)
def test_next_fire_is_strictly_after_and_never_repeats_a_wall_time(
    after: str, expected: str
) -> None:
    assert next_fire("30 2 * * *", BERLIN, utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("expr", "tz", "after"),
    [
        ("* * * * *", BERLIN, "2026-10-25 00:30"),
        ("*/7 * * * *", BERLIN, "2026-03-29 00:00"),
        ("0,30 1-3 * * *", BERLIN, "2026-10-24 23:00"),
        ("* 1,2 * * *", NEW_YORK, "2026-11-01 04:00"),
        ("*/5 2 * * *", NEW_YORK, "2026-03-08 06:00"),
    ],
)
def test_fire_times_strictly_increase_across_dst_changes(expr: str, tz: str, after: str) -> None:
    fires = next_fires(expr, tz, utc(after), 200)
    assert all(a < b for a, b in pairwise(fires))
    assert fires[0] > utc(after)


def test_results_are_utc_whatever_zone_after_is_given_in() -> None:
    after = datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4)))
    fire = next_fire("0 9 * * *", BERLIN, after)
    assert fire == utc("2026-06-02 07:00")
    assert fire.tzinfo is UTC


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire("* * * * *", "UTC", datetime(2026, 1, 1))


@pytest.mark.parametrize("n", [0, 1, 5, 50])
def test_next_fires_returns_n_increasing_times(n: int) -> None:
    fires = next_fires("*/15 * * * *", BERLIN, NEW_YEAR, n)
    assert len(fires) == n
    assert fires == sorted(set(fires))
    assert fires == [NEW_YEAR + timedelta(minutes=15 * (i + 1)) for i in range(n)]


def test_parse_cron_compiles_once_and_schedules_compare_by_value() -> None:
    schedule = parse_cron("0 9 * * 0", BERLIN)
    assert isinstance(schedule, CronSchedule)
    assert schedule == parse_cron("0 9 * * 0", BERLIN)
    assert schedule.next_fire(NEW_YEAR) == utc("2026-01-04 08:00")
    assert schedule.next_fires(NEW_YEAR, 2)[1] == utc("2026-01-11 08:00")


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "cron expression is empty"),
        ("   ", "cron expression is empty"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 0 * * * *", "expected 5 fields"),
        ("60 * * * *", "minute field '60': value 60 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': value 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month field '0': value 0 is out of range 1-31"),
        ("* * 32 * *", "value 32 is out of range 1-31"),
        ("* * * 13 *", "month field '13': value 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week field '8': value 8 is out of range 0-7"),
        ("*/0 * * * *", "minute field '*/0': step '0' must be a number from 1 to 59"),
        ("*/60 * * * *", "step '60' must be a number from 1 to 59"),
        ("* * * * */7", "day-of-week field '*/7': step '7' must be a number from 1 to 6"),
        ("*/x * * * *", "step 'x' must be a number"),
        ("1-5/ * * * *", "step '' must be a number"),
        ("* * * foo *", "month field 'foo': unknown value 'foo' (allowed: 1-12 or jan..dec)"),
        ("* * * * sunday", "unknown value 'sunday' (allowed: 0-7 or sun..sat)"),
        ("* * * * mon-funday", "unknown value 'funday'"),
        ("* * jan * *", "day-of-month field 'jan': unknown value 'jan' (allowed: 1-31)"),
        ("5-1 * * * *", "minute field '5-1': range '5-1' runs backwards"),
        ("1,,2 * * * *", "minute field '1,,2': cannot parse ''"),
        ("-1 * * * *", "cannot parse '-1'"),
        ("*-5 * * * *", "cannot parse '*-5'"),
        ("0 0 30 2 *", "day-of-month field '30' never occurs in month '2'"),
        ("0 0 31 4,6 *", "never occurs"),
        ("@reboot", "unknown macro '@reboot'"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_cron(expr, BERLIN)
    assert caught.value.field == "cronExpr"
    assert message in str(caught.value)


def test_an_impossible_day_of_month_still_fires_on_its_weekday() -> None:
    # Vixie OR: "the 30th of February or any Monday" still fires on Mondays.
    assert next_fire("0 0 30 2 1", "UTC", NEW_YEAR) == utc("2026-02-02 00:00")


@pytest.mark.parametrize(
    "tz", ["", "Nowhere/City", "europe/berlin", "Europe", "../etc/passwd", "/etc/localtime"]
)
def test_invalid_time_zones_are_rejected(tz: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_cron("0 9 * * *", tz)
    assert caught.value.field == "timezone"
    assert "unknown time zone" in str(caught.value)


def test_host_dependent_zone_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone name"):
        parse_cron("0 9 * * *", "localtime")


@pytest.mark.parametrize("tz", ["UTC", BERLIN, NEW_YORK, "Asia/Kolkata", "Pacific/Chatham"])
def test_iana_zone_names_are_accepted(tz: str) -> None:
    assert parse_cron("0 9 * * *", tz).timezone == tz


# --- describe ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "description"),
    [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 9 * * 0", "at 09:00 on Sunday"),
        ("0 9 * * 7", "at 09:00 on Sunday"),
        ("0 * * * 1-5", "at minute 0 past every hour on Monday through Friday"),
        ("30 2 * * *", "at 02:30"),
        ("0 9,17 * * *", "at 09:00 and 17:00"),
        ("15,45 9 * * *", "at 09:15 and 09:45"),
        ("0 */2 * * *", "at minute 0 past every 2nd hour"),
        ("0,30 * * * *", "at minutes 0 and 30 past every hour"),
        ("* 9 * * *", "every minute past hour 9"),
        (
            "*/5 9-17 * * mon-fri",
            "every 5 minutes past hours 9 through 17 on Monday through Friday",
        ),
        ("0 9 * * */2", "at 09:00 on Sunday, Tuesday, Thursday and Saturday"),
        ("0 9 1 * *", "at 09:00 on day-of-month 1"),
        ("0 9 1 * 1", "at 09:00 on day-of-month 1 or on Monday"),
        ("0 9 */2 * 1", "at 09:00 on every 2nd day-of-month if it is also Monday"),
        ("0 0 1 jan *", "at 00:00 on day-of-month 1 in January"),
        ("0 0 1 */3 *", "at 00:00 on day-of-month 1 in January, April, July and October"),
        ("0-30/10 * * * *", "at every 10th minute from 0 through 30 past every hour"),
        ("@daily", "at 00:00"),
        ("@hourly", "at minute 0 past every hour"),
    ],
)
def test_describe_reads_as_english(expr: str, description: str) -> None:
    assert describe(expr) == description


def test_describe_rejects_invalid_expressions() -> None:
    with pytest.raises(ValidationError, match="out of range"):
        describe("61 * * * *")
