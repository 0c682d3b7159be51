"""Pure digest planning: modes, thresholds, quiet hours across midnight and DST, urgent
override, and one digest per period even in a DST repeated hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.delivery.planning import HeldStory, PlannedDigest, in_quiet_hours, plan_digests
from core.delivery.wait_settings import QuietHours, WaitSettings, parse_wait_settings
from core.errors import ValidationError

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def held(n: int, at: datetime = T0, score: float = 0.5, prefix: str = "s") -> list[HeldStory]:
    return [HeldStory(f"{prefix}{i:03d}", at + timedelta(seconds=i), score) for i in range(n)]


class Planner:
    """Simulates the database around the pure planner: unique keys, planned stories leave."""

    def __init__(self, settings: WaitSettings) -> None:
        self.settings = settings
        self.held: list[HeldStory] = []
        self.keys: set[str] = set()
        self.digests: list[PlannedDigest] = []

    def find(self, story_id: str, at: datetime, score: float = 0.5) -> None:
        self.held.append(HeldStory(story_id, at, score))

    def plan(self, now: datetime) -> list[PlannedDigest]:
        made = []
        for digest in plan_digests(now, self.settings, self.held):
            if digest.key in self.keys:
                continue
            self.keys.add(digest.key)
            made.append(digest)
            self.held = [s for s in self.held if s.id not in digest.story_ids]
        self.digests += made
        return made


def test_immediate_sends_everything_held_in_one_digest_keyed_by_its_first_story() -> None:
    [digest] = plan_digests(T0, WaitSettings(), held(3))
    assert digest.key == "i:s000"
    assert set(digest.story_ids) == {"s000", "s001", "s002"}


def test_nothing_held_plans_nothing() -> None:
    assert plan_digests(T0, WaitSettings(mode="digest"), []) == []


def test_more_than_max_per_digest_becomes_numbered_parts_ordered_by_score() -> None:
    stories = [HeldStory(f"s{i}", T0 + timedelta(seconds=i), i / 10) for i in range(5)]
    parts = plan_digests(T0 + timedelta(minutes=1), WaitSettings(maxPerDigest=2), stories)
    assert [p.key for p in parts] == ["i:s0", "i:s0/2", "i:s0/3"]
    assert parts[0].story_ids == ("s1", "s0")  # higher score first within a part
    assert sum(len(p.story_ids) for p in parts) == 5


def test_digest_waits_for_the_boundary_after_the_oldest_story() -> None:
    settings = WaitSettings(mode="digest", intervalMinutes=60)
    stories = held(2, at=datetime(2026, 6, 1, 12, 10, tzinfo=UTC))
    assert plan_digests(datetime(2026, 6, 1, 12, 50, tzinfo=UTC), settings, stories) == []
    [digest] = plan_digests(datetime(2026, 6, 1, 13, 5, tzinfo=UTC), settings, stories)
    assert digest.key == "d:2026-06-01T13:00"
    assert digest.period_end == datetime(2026, 6, 1, 13, 0, tzinfo=UTC)


def test_min_stories_holds_until_enough_then_max_wait_forces_a_digest() -> None:
    settings = WaitSettings(mode="digest", intervalMinutes=60, minStories=3, maxWaitMinutes=180)
    stories = held(2, at=datetime(2026, 6, 1, 12, 10, tzinfo=UTC))
    assert plan_digests(datetime(2026, 6, 1, 13, 5, tzinfo=UTC), settings, stories) == []
    assert plan_digests(datetime(2026, 6, 1, 15, 5, tzinfo=UTC), settings, stories) == []
    [digest] = plan_digests(datetime(2026, 6, 1, 15, 11, tzinfo=UTC), settings, stories)
    assert digest.key == "w:s000" and digest.reason == "max wait"
    three = [*stories, *held(1, at=datetime(2026, 6, 1, 12, 20, tzinfo=UTC), prefix="t")]
    [enough] = plan_digests(datetime(2026, 6, 1, 13, 5, tzinfo=UTC), settings, three)
    assert enough.key == "d:2026-06-01T13:00" and len(enough.story_ids) == 3


def test_cron_digest_at_local_times() -> None:
    settings = WaitSettings(mode="digest", cron="0 9 * * 1-5", timezone="Europe/Berlin")
    stories = held(1, at=datetime(2026, 6, 1, 5, 0, tzinfo=UTC))  # Monday 07:00 CEST
    assert plan_digests(datetime(2026, 6, 1, 6, 30, tzinfo=UTC), settings, stories) == []
    [digest] = plan_digests(datetime(2026, 6, 1, 7, 2, tzinfo=UTC), settings, stories)
    assert digest.key == "d:2026-06-01T09:00"


@pytest.mark.parametrize(
    ("settings", "times"),
    [
        (
            WaitSettings(mode="digest", intervalMinutes=60, timezone="Europe/Berlin"),
            None,
        ),
        (
            WaitSettings(mode="digest", cron="*/30 * * * *", timezone="Europe/Berlin"),
            None,
        ),
    ],
    ids=["interval", "cron-wildcard-hour"],
)
def test_dst_repeated_hour_never_yields_two_digests_for_one_period(
    settings: WaitSettings, times: None
) -> None:
    """2026-10-25 Europe/Berlin: 02:00-03:00 happens twice (00:00-01:00 and 01:00-02:00 UTC).
    A story every 10 minutes, a plan every 5: each wall-clock period has one digest."""
    planner = Planner(settings)
    start = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    for step in range(12 * 4):
        now = start + timedelta(minutes=5 * step)
        if step % 2 == 0:
            planner.find(f"s{step:03d}", now)
        planner.plan(now + timedelta(seconds=30))
    keys = [d.key for d in planner.digests]
    assert len(keys) == len(set(keys))
    assert "d:2026-10-25T02:00" in keys
    # Stories found in the second 02:00-03:00 wait for the 03:00 digest: none lost.
    planner.plan(datetime(2026, 10, 25, 6, 0, tzinfo=UTC))
    delivered = [s for d in planner.digests for s in d.story_ids]
    assert len(delivered) == len(set(delivered)) == 24


def test_quiet_hours_across_midnight_hold_until_they_end() -> None:
    quiet = QuietHours.model_validate({"start": "22:00", "end": "07:00", "timezone": "UTC"})
    settings = WaitSettings(quietHours=quiet)
    night = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    early = datetime(2026, 6, 2, 6, 59, tzinfo=UTC)
    assert plan_digests(night, settings, held(2, at=night)) == []
    assert plan_digests(early, settings, held(2, at=night)) == []
    [digest] = plan_digests(datetime(2026, 6, 2, 7, 0, tzinfo=UTC), settings, held(2, at=night))
    assert digest.reason == "immediate"
    assert not in_quiet_hours(datetime(2026, 6, 1, 21, 59, tzinfo=UTC), quiet)


def test_quiet_hours_follow_local_time_across_dst() -> None:
    quiet = QuietHours.model_validate(
        {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
    )
    # 05:30 UTC is 06:30 in winter (CET, quiet) but 07:30 in summer (CEST, not quiet).
    assert in_quiet_hours(datetime(2026, 1, 15, 5, 30, tzinfo=UTC), quiet)
    assert not in_quiet_hours(datetime(2026, 7, 15, 5, 30, tzinfo=UTC), quiet)
    # Spring forward 2026-03-29: 02:00 CET jumps to 03:00 CEST; quiet 01:00-03:00 ends at
    # the jump (01:00 UTC), not an hour later.
    short = QuietHours.model_validate(
        {"start": "01:00", "end": "03:00", "timezone": "Europe/Berlin"}
    )
    assert in_quiet_hours(datetime(2026, 3, 29, 0, 59, tzinfo=UTC), short)
    assert not in_quiet_hours(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), short)
    # Fall back 2026-10-25: 02:00-03:00 happens twice and both are quiet.
    assert in_quiet_hours(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), short)
    assert in_quiet_hours(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), short)
    assert not in_quiet_hours(datetime(2026, 10, 25, 2, 0, tzinfo=UTC), short)


def test_urgent_story_overrides_quiet_hours_and_batching() -> None:
    quiet = QuietHours.model_validate({"start": "00:00", "end": "23:59", "timezone": "UTC"})
    settings = WaitSettings(mode="digest", intervalMinutes=1440, urgentScore=0.9, quietHours=quiet)
    stories = [HeldStory("calm", T0, 0.5), HeldStory("hot", T0, 0.95)]
    [digest] = plan_digests(T0 + timedelta(minutes=1), settings, stories)
    assert digest.key == "u:hot" and digest.story_ids == ("hot",)


def test_wait_settings_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"waitSettings.intervalMinutes"):
        parse_wait_settings({"mode": "digest", "intervalMinutes": 7})
    with pytest.raises(ValidationError, match=r"waitSettings.quietHours.timezone"):
        parse_wait_settings({"quietHours": {"start": "01:00", "end": "02:00", "timezone": "X/Y"}})
    with pytest.raises(ValidationError, match=r"waitSettings: cron: minute field"):
        parse_wait_settings({"mode": "digest", "cron": "61 * * * *"})
    with pytest.raises(ValidationError, match=r"waitSettings.bogus"):
        parse_wait_settings({"bogus": 1})
