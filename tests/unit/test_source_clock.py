"""A source's own clock as pure functions: its publishing gap and its next interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.ingest.source_clock import (
    MAX_CACHE_LIFETIME,
    ClockPolicy,
    cron_period,
    next_interval,
    publishing_gap,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = ClockPolicy()  # 5 min floor, 1 min urgent floor, 1 h ceiling


def every(gap: timedelta, n: int = 10) -> list[datetime | None]:
    return [T0 - gap * i for i in range(n)]


def test_publishing_gap_is_the_median_of_the_newest_items():
    assert publishing_gap(every(20 * MIN)) == 20 * MIN
    # One late straggler and an undated item change nothing; duplicates count once.
    assert publishing_gap([*every(2 * MIN), T0 - 300 * MIN, None, T0]) == 2 * MIN
    # Only the newest RATE_SAMPLE items count: an old burst does not speed up a slow feed.
    old_burst = [T0 - timedelta(days=30) - i * MIN for i in range(40)]
    assert publishing_gap([*every(3 * MIN * 60), *old_burst]) == 180 * MIN
    assert publishing_gap([T0]) is None
    assert publishing_gap([None, None]) is None


@pytest.mark.parametrize(
    ("gap", "previous", "follower", "lifetime", "expected"),
    [
        # A quiet source waits the ceiling; a busy one the floor.
        (timedelta(days=2), None, None, None, timedelta(hours=1)),
        (20 * MIN, None, None, None, 20 * MIN),
        (20 * timedelta(seconds=1), None, None, None, 5 * MIN),
        # A search firing every minute lowers the floor to a minute; every 3: to 3.
        (20 * timedelta(seconds=1), None, MIN, None, MIN),
        (20 * timedelta(seconds=1), None, 3 * MIN, None, 3 * MIN),
        # ...but never below the urgent floor, and an hourly search lowers nothing.
        (20 * timedelta(seconds=1), None, timedelta(seconds=10), None, MIN),
        (20 * timedelta(seconds=1), None, 60 * MIN, None, 5 * MIN),
        # No dates this time (304, undated items): the previous interval stands.
        (None, 12 * MIN, None, None, 12 * MIN),
        (None, None, None, None, timedelta(hours=1)),
        # The server's lifetime is honoured as a lower bound, up to a cap.
        (2 * MIN, None, MIN, 10 * MIN, 10 * MIN),
        (2 * MIN, None, MIN, timedelta(days=3), MAX_CACHE_LIFETIME),
        (2 * MIN, None, MIN, 30 * timedelta(seconds=1), 2 * MIN),
    ],
)
def test_next_interval(
    gap: timedelta | None,
    previous: timedelta | None,
    follower: timedelta | None,
    lifetime: timedelta | None,
    expected: timedelta,
):
    got = next_interval(
        POLICY, gap=gap, previous=previous, follower_period=follower, cache_lifetime=lifetime
    )
    assert got == expected


def test_policy_bounds_must_be_ordered():
    with pytest.raises(ValueError, match="urgent_interval <= min_interval"):
        ClockPolicy(min_interval=MIN, urgent_interval=5 * MIN)


def test_cron_period():
    assert cron_period("*/1 * * * *", "UTC", T0) == MIN
    assert cron_period("*/15 * * * *", "Europe/Berlin", T0) == 15 * MIN
    assert cron_period("0 9 * * *", "UTC", T0) == timedelta(days=1)
