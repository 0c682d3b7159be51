"""Sources on their own clock, on the real databases: which sources are due, how often a
source is fetched, the runs a refresh starts, and politeness across processes (Redis)."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.config import Settings
from core.db.models import News, Organization, Run, Source, Story
from core.db.session import unit_of_work
from core.fetch import GuardPolicy, build_client
from core.fetch.politeness import Busy, HostLimiter, RedisHostLimiter, take_slot
from core.ingest.refresh import refresh
from core.ingest.source_clock import (
    REFRESH_QUEUE_GRACE,
    ClockPolicy,
    mark_due_now,
    sources_to_refresh,
)
from core.news.searches import add_schedule, create_search
from core.tenancy.organizations import create_organization
from tests.support import LocalHTTPServer, Response
from tests.support.pipeline import run_now, settle
from workers.broker import build_broker
from workers.pipeline import build_pipeline

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=5, connect_timeout_s=1)
CLOCK = ClockPolicy()


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


def rss(*ages_min: int, now: datetime = T0) -> bytes:
    items = "".join(
        f"<item><title>Story {age}</title><link>http://127.0.0.1/s/{age}</link>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=age))}</pubDate></item>"
        for age in ages_min
    )
    channel = f"<channel><title>T</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def search(engine: Engine, urls: list[str], slug: str, cron: str | None = None) -> str:
    with unit_of_work(engine) as session:
        org = create_organization(session, name=slug, slug=slug)
        news = create_search(
            session,
            org.id,
            name="S",
            search_query={"query": "", "sources": [{"url": url} for url in urls]},
        )
        if cron:
            add_schedule(session, org.id, news.id, cron_expr=cron, timezone="UTC", now=T0)
        return news.id


def source_ids(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {s.url: s.id for s in session.scalars(select(Source))}


# --- which sources are due ---------------------------------------------------------------


def test_due_followed_sources_are_sent_once_until_their_refresh_is_overdue(db_engine: Engine):
    news_id = search(db_engine, ["https://a.example/feed", "https://b.example/feed"], "one")
    search(db_engine, ["https://c.example/feed"], "off")
    ids = source_ids(db_engine)
    with unit_of_work(db_engine) as session:
        session.execute(update(News).where(News.id != news_id).values(isActive=False))
        session.execute(
            update(Source)
            .where(Source.id == ids["https://b.example/feed"])
            .values(nextFetchAt=T0 + timedelta(minutes=3))
        )
    with unit_of_work(db_engine) as session:
        due = sources_to_refresh(session, now=T0)
    # Never fetched and due: a; b is not due yet; c is followed only by an inactive search.
    assert due == [ids["https://a.example/feed"]]
    with unit_of_work(db_engine) as session:  # its refresh is on its way: not sent again
        assert sources_to_refresh(session, now=T0 + timedelta(seconds=30)) == []
    with unit_of_work(db_engine) as session:  # the message was lost: sent again
        later = T0 + REFRESH_QUEUE_GRACE + timedelta(seconds=1)
        assert sources_to_refresh(session, now=later) == [ids["https://a.example/feed"]]
    with unit_of_work(db_engine) as session:  # an inactive organization's search counts not
        session.execute(update(Organization).values(isActive=False))
    with unit_of_work(db_engine) as session:
        assert sources_to_refresh(session, now=T0 + timedelta(hours=1)) == []


def test_two_scheduler_replicas_never_send_one_source_twice(pg_engine: Engine):
    search(pg_engine, [f"https://s{i}.example/feed" for i in range(50)], "many")
    got: list[list[str]] = []
    barrier = threading.Barrier(2)

    def replica() -> None:
        with unit_of_work(pg_engine) as session:
            barrier.wait()
            got.append(sources_to_refresh(session, now=T0, limit=30))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = got
    assert not set(first) & set(second)
    with unit_of_work(pg_engine) as session:
        rest = sources_to_refresh(session, now=T0)
    assert len(first) + len(second) + len(rest) == 50


# --- how often a source is fetched ------------------------------------------------------


def refresh_now(engine: Engine, source_id: str, now: datetime, **kwargs: Any) -> Any:
    with build_client(POLICY) as client:
        return refresh(engine, source_id, client, now, policy=CLOCK, **kwargs)


def next_fetch_in(engine: Engine, source_id: str, now: datetime) -> timedelta:
    with Session(engine) as session:
        source = session.get_one(Source, source_id)
        assert source.nextFetchAt is not None
        return source.nextFetchAt - now


def test_a_busy_source_is_fetched_as_often_as_its_fastest_follower_looks(db_engine: Engine):
    now = datetime.now(UTC).replace(microsecond=0)
    body = rss(*range(0, 40, 2), now=now)  # an item every 2 minutes
    with LocalHTTPServer(routes={"/busy.xml": Response(body=body)}) as server:
        url = server.url_for("/busy.xml")
        search(db_engine, [url], "hourly", cron="0 * * * *")
        source_id = source_ids(db_engine)[url]
        assert refresh_now(db_engine, source_id, now).outcome.state == "fetched"
        # No search looks more often than the 5-minute floor: every 5 minutes.
        assert next_fetch_in(db_engine, source_id, now) == timedelta(minutes=5)
        search(db_engine, [url], "urgent", cron="* * * * *")
        later = now + timedelta(minutes=5)
        assert refresh_now(db_engine, source_id, later).outcome.state == "fetched"
        # A search firing every minute: as often as the source publishes (2 minutes).
        assert next_fetch_in(db_engine, source_id, later) == timedelta(minutes=2)
        assert server.hits["/busy.xml"] == 2


def test_a_quiet_source_waits_the_ceiling_and_a_304_keeps_its_interval(db_engine: Engine):
    now = datetime.now(UTC).replace(microsecond=0)
    calls = {"n": 0}

    def quiet(_request: Any) -> Response:
        calls["n"] += 1
        if calls["n"] > 1:
            return Response(status=304)
        return Response(body=rss(0, 600, 1200, now=now), headers={"ETag": '"q1"'})

    with LocalHTTPServer(routes={"/quiet.xml": quiet}) as server:
        url = server.url_for("/quiet.xml")
        search(db_engine, [url], "q", cron="* * * * *")
        source_id = source_ids(db_engine)[url]
        refresh_now(db_engine, source_id, now)
        assert next_fetch_in(db_engine, source_id, now) == timedelta(hours=1)
        later = now + timedelta(hours=1)
        assert refresh_now(db_engine, source_id, later).outcome.state == "not_modified"
        assert next_fetch_in(db_engine, source_id, later) == timedelta(hours=1)


# --- the runs a refresh starts ----------------------------------------------------------


def runs_of(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(select(Run.newsId)).scalars().all()
    return {news_id: rows.count(news_id) for news_id in set(rows)}


def test_a_first_fetch_starts_every_follower_and_later_ones_only_who_asked(db_engine: Engine):
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = [rss(0, 10, now=now), rss(0, 5, 10, now=now)]
    state = {"i": 0}

    def feed(_request: Any) -> Response:
        return Response(body=bodies[min(state["i"], 1)])

    with LocalHTTPServer(routes={"/f.xml": feed}) as server:
        url = server.url_for("/f.xml")
        a = search(db_engine, [url], "a", cron="0 9 * * *")
        b = search(db_engine, [url], "b", cron="0 9 * * *")
        source_id = source_ids(db_engine)[url]
        first = refresh_now(db_engine, source_id, now)
        # The first news of a source: both followers see it now, not at 9 tomorrow.
        assert first.outcome.first_success and len(first.run_ids) == 2
        assert runs_of(db_engine) == {a: 1, b: 1}
        state["i"] = 1
        later = now + timedelta(hours=1)
        second = refresh_now(db_engine, source_id, later)
        # New entries later wait for each search's own schedule...
        assert second.outcome.new_entries == 1 and second.run_ids == ()
        with unit_of_work(db_engine) as session:
            session.execute(update(Source).values(nextFetchAt=None))
        third = refresh_now(db_engine, source_id, later, follow_up=[b])
        # ...and a "run now" follow-up starts only its own search (nothing new: none).
        assert third.run_ids == ()


def test_run_now_refreshes_stale_sources_and_leaves_fresh_and_backing_off_ones(
    db_engine: Engine,
):
    urls = ["https://stale.example/f", "https://fresh.example/f", "https://down.example/f"]
    news_id = search(db_engine, urls, "now")
    ids = source_ids(db_engine)
    with unit_of_work(db_engine) as session:
        org_id = session.get_one(News, news_id).organizationId
        session.execute(
            update(Source)
            .where(Source.id == ids[urls[0]])
            .values(
                lastFetchedAt=T0 - timedelta(minutes=10), nextFetchAt=T0 + timedelta(minutes=50)
            )
        )
        session.execute(
            update(Source)
            .where(Source.id == ids[urls[1]])
            .values(lastFetchedAt=T0 - timedelta(seconds=20), nextFetchAt=T0 + timedelta(minutes=4))
        )
        session.execute(
            update(Source)
            .where(Source.id == ids[urls[2]])
            .values(status="failing", nextFetchAt=T0 + timedelta(minutes=30))
        )
    with unit_of_work(db_engine) as session:
        due = mark_due_now(session, org_id, news_id, now=T0, fresher_than=timedelta(minutes=1))
    assert due == [ids[urls[0]]]
    with Session(db_engine) as session:
        assert session.get_one(Source, ids[urls[0]]).nextFetchAt == T0


def test_a_deferred_run_now_refresh_keeps_the_clock_from_sending_its_own(db_engine: Engine):
    # The run-now refresh is sent again when its host is free; a clock refresh claiming
    # the source first would fetch the news without the run-now search's follow-up run.
    now = datetime.now(UTC).replace(microsecond=0)
    with LocalHTTPServer(routes={"/f.xml": Response(body=rss(0, now=now))}) as server:
        url = server.url_for("/f.xml")
        news_id = search(db_engine, [url], "q")
        source_id = source_ids(db_engine)[url]
        limiter = HostLimiter(concurrency=1, interval_s=60)
        limiter.try_acquire("127.0.0.1")
        done = refresh_now(db_engine, source_id, now, limiter=limiter, follow_up=[news_id])
        assert done.outcome.state == "deferred" and done.outcome.retry_in is not None
        due = now + done.outcome.retry_in
        with unit_of_work(db_engine) as session:
            assert sources_to_refresh(session, now=due) == []
        with unit_of_work(db_engine) as session:  # unless the resent refresh was lost
            assert sources_to_refresh(session, now=due + REFRESH_QUEUE_GRACE) == [source_id]


# --- politeness across processes ----------------------------------------------------------


def test_a_host_busy_beyond_the_patience_defers_the_refresh(db_engine: Engine):
    now = datetime.now(UTC).replace(microsecond=0)
    with LocalHTTPServer(routes={"/f.xml": Response(body=rss(0, 3, now=now))}) as server:
        url = server.url_for("/f.xml")
        search(db_engine, [url], "p")
        source_id = source_ids(db_engine)[url]
        limiter = HostLimiter(concurrency=2, interval_s=60)
        limiter.try_acquire("127.0.0.1")  # another refresh of this host just started
        done = refresh_now(db_engine, source_id, now, limiter=limiter)
        assert done.outcome.state == "deferred" and server.hits["/f.xml"] == 0
        with Session(db_engine) as session:
            source = session.get_one(Source, source_id)
            assert source.status == "new" and source.failureCount == 0  # not a failure
            assert source.nextFetchAt is not None
            assert timedelta(seconds=50) < source.nextFetchAt - now <= timedelta(seconds=60)


def test_redis_slots_hold_across_processes(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    # Two limiters on one Redis stand for two worker processes.
    limiters = [
        RedisHostLimiter(client, "polite-test", concurrency=2, interval_s=0.2) for _ in "ab"
    ]
    lock, active, peak, starts = threading.Lock(), [0], [0], []

    def fetch(limiter: RedisHostLimiter) -> None:
        with take_slot(limiter, "News.Example", patience_s=10) as busy:
            assert busy is None
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                starts.append(time.monotonic())
            time.sleep(0.5)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=fetch, args=(limiters[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
    starts.sort()
    # Spaced by Redis's clock; read here after the grant, so allow for thread scheduling.
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(starts))
    client.close()


def test_a_dead_holders_redis_slot_frees_itself(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    limiter = RedisHostLimiter(client, "polite-dead", concurrency=1, interval_s=0, hold_s=0.3)
    assert isinstance(limiter.try_acquire("h"), str)  # taken, never given back
    with take_slot(limiter, "h", patience_s=0) as busy:
        assert isinstance(busy, Busy)
    time.sleep(0.35)
    with take_slot(limiter, "h", patience_s=0) as again:
        assert again is None
    client.close()


def test_a_run_now_refresh_deferred_by_a_busy_host_still_brings_its_stories(
    pg_engine: Engine, tmp_path: Path
):
    # Two feeds on one host, one fetch of it at a time and 3 s between starts (beyond a
    # refresh's patience): the second refresh is deferred, and "run now" must still
    # deliver its news rather than leave it to the source's clock.
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = {"/a.xml": rss(1, now=now), "/b.xml": rss(2, now=now)}
    routes = {path: Response(body=body) for path, body in bodies.items()}
    with LocalHTTPServer(routes=routes) as server:
        news_id = search(pg_engine, [server.url_for(path) for path in bodies], "busy")
        with Session(pg_engine) as session:
            org_id = session.get_one(News, news_id).organizationId
        settings = Settings(
            data_dir=tmp_path,
            fetch_allowlist="127.0.0.1",
            fetch_host_concurrency=1,
            fetch_host_interval_seconds=3,
        )
        broker = build_pipeline(settings, pg_engine, broker=build_broker(settings))
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
        try:
            run_now(pg_engine, broker, org_id, news_id)
            settle(broker, worker)
        finally:
            worker.stop()
        assert server.hits == {"/a.xml": 1, "/b.xml": 1}
    with Session(pg_engine) as session:
        titles = set(session.scalars(select(Story.title).where(Story.newsId == news_id)))
    assert titles == {"Story 1", "Story 2"}
