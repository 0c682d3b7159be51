"""Scheduling against the real databases: ticks, claims, outcomes, the sweeper, run now."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from core.clock import utcnow
from core.db.models import News, Run, Schedule
from core.db.session import unit_of_work
from core.scheduling.runs import (
    ORPHAN_GRACE,
    REQUEUE_AFTER,
    RUN_LEASE,
    LeaseLost,
    claim_run,
    claim_run_on,
    complete_run,
    create_manual_run,
    fail_run,
    mark_enqueued,
    replay_run,
    runs_to_enqueue,
)
from scheduler.loop import Scheduler
from tests.support import factories
from tests.support.factories import due_schedule
from tests.support.runs import one_queued_run


class Sent:
    """An enqueue that records what the broker would have received."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, run_ids: list[str]) -> None:
        self.ids.extend(run_ids)


def runs_of(engine: Engine) -> list[Run]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(Run).order_by(Run.createdAt, Run.id)))


# --- the tick ----------------------------------------------------------------------


def test_tick_creates_exactly_the_due_runs_and_advances_next_run(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        due = [due_schedule(session, f"org{i}") for i in range(3)]
        due_at = {s.id: s.nextRun for s in due}
        later = due_schedule(session, "later", ago=-timedelta(hours=1))
    sent = Sent()

    created = Scheduler(db_engine, sent).tick()

    runs = runs_of(db_engine)
    assert created == 3
    assert {r.scheduleId: r.scheduledFor for r in runs} == due_at
    assert all(r.state == "queued" and r.trigger == "schedule" for r in runs)
    assert sorted(sent.ids) == sorted(r.id for r in runs)
    assert all(r.enqueuedAt is not None for r in runs)
    with unit_of_work(db_engine) as session:
        for sched in session.scalars(select(Schedule)):
            if sched.id == later.id:
                assert sched.nextRun == later.nextRun
            else:
                assert sched.nextRun is not None and sched.nextRun > utcnow()


def test_second_tick_creates_nothing(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        due_schedule(session)
    sent = Sent()
    scheduler = Scheduler(db_engine, sent)
    assert scheduler.tick() == 1
    assert scheduler.tick() == 0
    assert len(sent.ids) == 1
    assert len(runs_of(db_engine)) == 1


def test_tick_loops_while_batches_come_back_full(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        for i in range(7):
            due_schedule(session, f"org{i}")
    sent = Sent()
    assert Scheduler(db_engine, sent, batch_size=3).tick() == 7
    assert len(set(sent.ids)) == 7


def test_loop_sleeps_until_the_next_pending_fire_at_most_one_tick(db_engine: Engine) -> None:
    scheduler = Scheduler(db_engine, Sent())
    assert scheduler.seconds_to_wait(5.0) == 5.0  # nothing pending
    with unit_of_work(db_engine) as session:
        due_schedule(session, "soon", ago=-timedelta(seconds=2))
        due_schedule(session, "later", ago=-timedelta(seconds=4))
        due_schedule(session, "due", ago=timedelta(seconds=1))  # a replica fires it
        due_schedule(session, "off", ago=-timedelta(seconds=1), isActive=False)

    assert 1.0 < scheduler.seconds_to_wait(5.0) <= 2.0
    assert scheduler.seconds_to_wait(0.5) == 0.5


def test_refiring_the_same_time_inserts_nothing(db_engine: Engine) -> None:
    """The unique (schedule, scheduledFor) makes a repeated fire a no-op."""
    with unit_of_work(db_engine) as session:
        sched = due_schedule(session)
        due_at = sched.nextRun
    assert Scheduler(db_engine, Sent()).tick() == 1
    with unit_of_work(db_engine) as session:
        session.get_one(Schedule, sched.id).nextRun = due_at  # as if the advance was lost
    assert Scheduler(db_engine, Sent()).tick() == 0
    assert len(runs_of(db_engine)) == 1


@pytest.mark.parametrize(
    "fields",
    [{"isActive": False}, {"news_active": False}, {"org_active": False}],
    ids=["inactive-schedule", "inactive-search", "disabled-organization"],
)
def test_inactive_things_never_fire(db_engine: Engine, fields: dict[str, Any]) -> None:
    with unit_of_work(db_engine) as session:
        due_schedule(session, **fields)
    sent = Sent()
    assert Scheduler(db_engine, sent).tick() == 0
    assert sent.ids == []
    assert runs_of(db_engine) == []


def test_schedule_with_an_invalid_zone_is_parked_with_its_error(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        sched = due_schedule(session, timezone="Mars/Olympus")
    assert Scheduler(db_engine, Sent()).tick() == 0
    with unit_of_work(db_engine) as session:
        parked = session.get_one(Schedule, sched.id)
        assert parked.isActive is False and parked.nextRun is None
        assert parked.errorDetails and "Mars/Olympus" in parked.errorDetails["error"]


# --- claims and outcomes -----------------------------------------------------------------


def test_second_claim_gets_none(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        first = claim_run(session, run_id, now=now)
    with unit_of_work(db_engine) as session:
        second = claim_run(session, run_id, now=now + timedelta(seconds=1))
    assert first is not None and first.attempt == 1
    assert second is None


def test_expired_lease_is_reclaimable_and_fences_the_old_holder(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        old = claim_run(session, run_id, now=now)
    later = now + RUN_LEASE + timedelta(seconds=1)
    with unit_of_work(db_engine) as session:
        new = claim_run(session, run_id, now=later)
    assert old is not None and new is not None and new.attempt == 2

    with pytest.raises(LeaseLost), unit_of_work(db_engine) as session:
        complete_run(session, old, now=later, stats={"stale": True})
    with unit_of_work(db_engine) as session:
        complete_run(session, new, now=later, stats={"ok": True})
    (run,) = runs_of(db_engine)
    assert (run.state, run.stats, run.attempts) == ("succeeded", {"ok": True}, 2)


def test_a_claim_on_a_connection_commits_alone_and_leaves_it_transactional(
    db_engine: Engine,
) -> None:
    run_id, now = one_queued_run(db_engine)
    with db_engine.connect() as conn:
        claimed = claim_run_on(conn, run_id, now=now)
        assert claimed is not None and claimed.attempt == 1
        with unit_of_work(db_engine) as other:  # visible to everyone before the step
            assert other.get_one(Run, run_id).state == "running"
        with conn.begin() as step:  # the step's transaction on the same connection
            conn.execute(update(Run).where(Run.id == run_id).values(stats={"step": 1}))
            step.rollback()  # a failed step: its writes go, the claim stays
    (run,) = runs_of(db_engine)
    assert (run.state, run.attempts, run.stats) == ("running", 1, None)


def test_a_connection_claim_of_an_exhausted_run_gives_up(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    step = RUN_LEASE + timedelta(seconds=1)
    for attempt in range(2):
        with db_engine.connect() as conn:
            assert claim_run_on(conn, run_id, now=now + attempt * step, max_attempts=2)
    with db_engine.connect() as conn:
        assert claim_run_on(conn, run_id, now=now + 2 * step, max_attempts=2) is None
    (run,) = runs_of(db_engine)
    assert run.state == "failed" and run.error and "gave up" in run.error["error"]


def test_exhausted_attempts_fail_the_run_and_report_on_the_schedule(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    step = RUN_LEASE + timedelta(seconds=1)
    for attempt in range(2):
        with unit_of_work(db_engine) as session:
            claimed = claim_run(session, run_id, now=now + attempt * step, max_attempts=2)
        assert claimed is not None  # then its worker dies: the lease runs out
    give_up = now + 2 * step
    with unit_of_work(db_engine) as session:
        assert claim_run(session, run_id, now=give_up, max_attempts=2) is None
    (run,) = runs_of(db_engine)
    assert run.state == "failed" and run.finishedAt is not None
    assert run.error and "gave up after 2 attempts" in run.error["error"]
    with unit_of_work(db_engine) as session:
        sched = session.get_one(Schedule, run.scheduleId)
        assert sched.lastFailure is not None
        assert sched.errorDetails and run_id in sched.errorDetails["error"]


def test_complete_run_records_success_on_schedule_and_search(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    done = now + timedelta(seconds=3)
    with unit_of_work(db_engine) as session:
        complete_run(session, claimed, now=done, stats={"stories": 2})
    with unit_of_work(db_engine) as session:
        sched = session.get_one(Schedule, claimed.schedule_id)
        news = session.get_one(News, claimed.news_id)
        assert sched.lastSuccess == done and sched.errorDetails is None
        assert news.lastRun == done
        assert news.nextRun == sched.nextRun and news.nextRun is not None


def test_transient_failure_requeues_and_permanent_failure_ends(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    with unit_of_work(db_engine) as session:
        assert fail_run(session, claimed, now=now, error={"error": "timeout"}, retry=True)
    with unit_of_work(db_engine) as session:
        again = claim_run(session, run_id, now=now)
    assert again is not None and again.attempt == 2
    with unit_of_work(db_engine) as session:
        assert not fail_run(session, again, now=now, error={"error": "bad"}, retry=False)
    (run,) = runs_of(db_engine)
    assert (run.state, run.error) == ("failed", {"error": "bad"})


def test_success_after_a_failed_attempt_clears_the_errors_to_sql_null(db_engine: Engine) -> None:
    """The run's ``error`` and the schedule's ``errorDetails`` become SQL NULL, not the
    JSON ``null`` a bound None would store (queries test them with IS NULL)."""
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    with unit_of_work(db_engine) as session:
        fail_run(session, claimed, now=now, error={"error": "timeout"}, retry=True)
    with unit_of_work(db_engine) as session:
        again = claim_run(session, run_id, now=now)
    assert again is not None
    with unit_of_work(db_engine) as session:
        complete_run(session, again, now=now, stats={"stories": 0})
    with unit_of_work(db_engine) as session:
        assert session.scalar(select(func.count()).where(Run.error.is_(None))) == 1
        assert session.scalar(select(func.count()).where(Schedule.errorDetails.is_(None))) == 1
        assert session.scalar(select(Schedule.lastSuccess)) == now


def failed_run(engine: Engine) -> tuple[Run, datetime]:
    run_id, now = one_queued_run(engine)
    with unit_of_work(engine) as session:
        claimed = claim_run(session, run_id, now=now)
    assert claimed is not None
    with unit_of_work(engine) as session:
        fail_run(session, claimed, now=now, error={"error": "bad"}, retry=False)
    (run,) = runs_of(engine)
    return run, now


def test_replay_puts_a_failed_run_back_to_queued_with_attempts_reset(db_engine: Engine) -> None:
    run, now = failed_run(db_engine)
    later = now + timedelta(minutes=1)
    with unit_of_work(db_engine) as session:
        assert replay_run(session, run.organizationId, run.id, now=later) is True
    (replayed,) = runs_of(db_engine)
    assert (replayed.state, replayed.attempts, replayed.finishedAt) == ("queued", 0, None)
    assert replayed.enqueuedAt is None and replayed.updatedAt == later
    with unit_of_work(db_engine) as session:  # claimable again, from attempt 1
        claimed = claim_run(session, run.id, now=later)
    assert claimed is not None and claimed.attempt == 1


def test_replay_changes_nothing_but_a_failed_run_of_the_organization(db_engine: Engine) -> None:
    run, now = failed_run(db_engine)
    with unit_of_work(db_engine) as session:
        assert replay_run(session, "another-org", run.id, now=now) is False
        assert replay_run(session, run.organizationId, "no-such-run", now=now) is False
        assert replay_run(session, run.organizationId, run.id, now=now) is True
    with unit_of_work(db_engine) as session:  # queued now: a second replay is a no-op
        assert replay_run(session, run.organizationId, run.id, now=now) is False


def test_replay_of_a_manual_run_while_another_waits_is_refused(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        search = factories.news(session, factories.org(session))
    org, now = search.organizationId, utcnow()
    with unit_of_work(db_engine) as session:
        first, _ = create_manual_run(session, org, search.id, now=now)
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, first, now=now)
    assert claimed is not None
    with unit_of_work(db_engine) as session:
        fail_run(session, claimed, now=now, error={"error": "bad"}, retry=False)
    with unit_of_work(db_engine) as session:
        second, created = create_manual_run(session, org, search.id, now=now)
    assert created
    with unit_of_work(db_engine) as session:
        assert replay_run(session, org, first, now=now) is False
    states = {r.id: r.state for r in runs_of(db_engine)}
    assert states == {first: "failed", second: "queued"}


# --- the sweeper -----------------------------------------------------------------------


def test_sweeper_enqueues_an_orphan_only_after_the_grace(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)  # committed, never enqueued: a crashed replica
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=now + ORPHAN_GRACE / 2) == []
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=now + ORPHAN_GRACE + timedelta(seconds=1)) == [run_id]
    with unit_of_work(db_engine) as session:  # a second sweeper right after sends nothing
        assert runs_to_enqueue(session, now=now + ORPHAN_GRACE + timedelta(seconds=2)) == []


def test_sweeper_re_enqueues_a_run_the_broker_lost(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        mark_enqueued(session, [run_id], now=now)
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=now + REQUEUE_AFTER - timedelta(seconds=1)) == []
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=now + REQUEUE_AFTER + timedelta(seconds=1)) == [run_id]


def test_sweeper_puts_a_run_with_an_expired_lease_back_to_queued(db_engine: Engine) -> None:
    run_id, now = one_queued_run(db_engine)
    with unit_of_work(db_engine) as session:
        mark_enqueued(session, [run_id], now=now)
        assert claim_run(session, run_id, now=now) is not None
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=now + RUN_LEASE / 2) == []
    # Long enough that it also counts as lost by the broker: still sent once.
    swept_at = now + max(RUN_LEASE, REQUEUE_AFTER) + timedelta(seconds=1)
    with unit_of_work(db_engine) as session:
        assert runs_to_enqueue(session, now=swept_at) == [run_id]
    (run,) = runs_of(db_engine)
    assert run.state == "queued" and run.leaseUntil is None
    with unit_of_work(db_engine) as session:
        claimed = claim_run(session, run_id, now=swept_at)
    assert claimed is not None and claimed.attempt == 2


def test_scheduler_sweep_uses_its_configured_timings(db_engine: Engine) -> None:
    run_id, _ = one_queued_run(db_engine)
    sent = Sent()
    scheduler = Scheduler(db_engine, sent, orphan_grace=timedelta(microseconds=1))
    assert scheduler.sweep() == 1
    assert sent.ids == [run_id]
    assert scheduler.sweep() == 0


# --- run now ---------------------------------------------------------------------------


def test_run_now_is_deduplicated_while_queued(db_engine: Engine) -> None:
    with unit_of_work(db_engine) as session:
        search = factories.news(session, factories.org(session))
    with unit_of_work(db_engine) as session:
        first, created = create_manual_run(session, search.organizationId, search.id, now=utcnow())
    assert created
    with unit_of_work(db_engine) as session:
        assert create_manual_run(session, search.organizationId, search.id, now=utcnow()) == (
            first,
            False,
        )
    with unit_of_work(db_engine) as session:  # once it runs, "run now" makes a new one
        assert claim_run(session, first, now=utcnow()) is not None
    with unit_of_work(db_engine) as session:
        second, created = create_manual_run(session, search.organizationId, search.id, now=utcnow())
    assert created and second != first


def test_concurrent_run_now_creates_one_run(pg_engine: Engine) -> None:
    with unit_of_work(pg_engine) as session:
        search = factories.news(session, factories.org(session))
    callers = 8
    barrier = threading.Barrier(callers)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def run_now() -> None:
        try:
            barrier.wait()
            with unit_of_work(pg_engine) as session:
                results.append(
                    create_manual_run(session, search.organizationId, search.id, now=utcnow())
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run_now) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({run_id for run_id, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1
    with unit_of_work(pg_engine) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 1
