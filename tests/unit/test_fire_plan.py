"""Fire planning: catch-up policies after an outage, triggers, bounds (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.cron import parse_cron
from core.scheduling.plan import MAX_CATCH_UP_RUNS, ON_TIME_GRACE, plan_fires

EVERY_5 = parse_cron("*/5 * * * *", "UTC")
MINUTELY = parse_cron("* * * * *", "UTC")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # nextRun when the outage began
AFTER_OUTAGE = T0 + timedelta(minutes=30, seconds=7)


def test_on_time_fire_is_one_schedule_run() -> None:
    plan = plan_fires(EVERY_5, T0, "once", T0 + timedelta(seconds=1))
    assert [(r.scheduled_for, r.trigger) for r in plan.runs] == [(T0, "schedule")]
    assert plan.next_run == T0 + timedelta(minutes=5)


@pytest.mark.parametrize("policy", ["once", "all", "skip"])
def test_on_time_fire_is_the_same_for_every_policy(policy: str) -> None:
    plan = plan_fires(EVERY_5, T0, policy, T0 + timedelta(seconds=30))
    assert [(r.scheduled_for, r.trigger) for r in plan.runs] == [(T0, "schedule")]


def test_once_after_30_minute_outage_runs_latest_fire_as_catchup() -> None:
    plan = plan_fires(EVERY_5, T0, "once", AFTER_OUTAGE)
    assert [(r.scheduled_for, r.trigger) for r in plan.runs] == [
        (T0 + timedelta(minutes=30), "catchup")
    ]
    assert plan.next_run == T0 + timedelta(minutes=35)


def test_all_after_30_minute_outage_runs_every_missed_fire() -> None:
    plan = plan_fires(EVERY_5, T0, "all", AFTER_OUTAGE)
    assert [r.scheduled_for for r in plan.runs] == [
        T0 + timedelta(minutes=m) for m in range(0, 31, 5)
    ]
    # Only the fire within the grace counts as on time.
    assert [r.trigger for r in plan.runs] == ["catchup"] * 6 + ["schedule"]
    assert plan.next_run == T0 + timedelta(minutes=35)


def test_skip_after_30_minute_outage_runs_only_a_fire_still_on_time() -> None:
    plan = plan_fires(EVERY_5, T0, "skip", AFTER_OUTAGE)
    assert [(r.scheduled_for, r.trigger) for r in plan.runs] == [
        (T0 + timedelta(minutes=30), "schedule")
    ]


def test_skip_runs_nothing_when_latest_fire_is_past_the_grace() -> None:
    now = T0 + timedelta(minutes=33)
    assert now - (T0 + timedelta(minutes=30)) > ON_TIME_GRACE
    plan = plan_fires(EVERY_5, T0, "skip", now)
    assert plan.runs == ()
    assert plan.next_run == T0 + timedelta(minutes=35)


def test_all_is_capped_to_the_latest_fires() -> None:
    now = T0 + timedelta(minutes=300, seconds=1)
    plan = plan_fires(MINUTELY, T0, "all", now)
    assert len(plan.runs) == MAX_CATCH_UP_RUNS
    assert plan.runs[-1].scheduled_for == T0 + timedelta(minutes=300)
    assert plan.runs[0].scheduled_for == T0 + timedelta(minutes=300 - MAX_CATCH_UP_RUNS + 1)


@pytest.mark.parametrize("policy", ["once", "all", "skip"])
def test_year_long_outage_is_bounded_and_lands_after_now(policy: str) -> None:
    now = T0 + timedelta(days=365, seconds=30)
    plan = plan_fires(MINUTELY, T0, policy, now)  # would be 525k fires walked one by one
    assert len(plan.runs) <= MAX_CATCH_UP_RUNS
    assert all(T0 <= r.scheduled_for <= now for r in plan.runs)
    assert plan.next_run > now


@pytest.mark.parametrize("policy", ["once", "all", "skip"])
@pytest.mark.parametrize(
    "now",
    [T0, T0 + timedelta(minutes=5), AFTER_OUTAGE, T0 + timedelta(days=3, minutes=5)],
)
def test_next_run_is_strictly_after_now(policy: str, now: datetime) -> None:
    plan = plan_fires(EVERY_5, T0, policy, now)
    assert plan.next_run > now
    assert plan.next_run == EVERY_5.next_fire(now)


def test_weekly_schedule_in_berlin_catches_up_once() -> None:
    sundays = parse_cron("0 9 * * 0", "Europe/Berlin")
    first = sundays.next_fire(datetime(2026, 3, 1, tzinfo=UTC))  # Sunday 1 March 09:00 CET
    plan = plan_fires(sundays, first, "once", first + timedelta(days=15))
    assert [r.trigger for r in plan.runs] == ["catchup"]
    assert plan.runs[0].scheduled_for == first + timedelta(days=14)
    assert plan.next_run.astimezone(UTC).weekday() == 6  # still a Sunday
