"""A run never fails for lack of something to score, and a source's fetch outcome is
committed whatever happens to any run (RELIABILITY row 66).

Through the real refresh and run actors on PostgreSQL, with feeds served on 127.0.0.1:
404, an empty feed, an empty body, an HTML page, a refused connection. Sources are
refreshed on their own clock (the scheduler's source tick picks the due ones); a run
only reads what they gathered.
"""

from __future__ import annotations

import socket
import threading
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api.app import create_app
from core.clock import utcnow
from core.config import Settings
from core.db.models import Entry, Run, Source, Story
from core.db.session import unit_of_work
from core.errors import ValidationError
from core.fetch import GuardPolicy
from core.ingest import sources as ingest_sources
from core.ingest.sources import BACKOFF_BASE
from core.ingest.step import find_stories
from core.news.searches import create_search
from core.scheduling.runs import ClaimedRun, create_manual_run
from core.scheduling.steps import RunPhases, RunStep
from core.tenancy.api_keys import create_operator_key
from core.tenancy.organizations import create_organization
from scheduler.loop import Scheduler
from tests.support import LocalHTTPServer, Request, Response
from workers.pipeline import build_pipeline
from workers.runs import RetryRun

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
POLICY = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=5, connect_timeout_s=1)
#: The README's own example query: nothing in an empty stream can match it.
QUERY = '"open source" AND (ai OR llm)'
EMPTY_FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Quiet</title>'
    b"<link>http://127.0.0.1/</link></channel></rss>"
)
FEED = (FEEDS / "rsparser-ranchero-manton.rss").read_bytes()


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    return tripwire


def refused_url() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/refused"


def make_search(
    engine: Engine, urls: list[str], slug: str = "acme", query: str = QUERY
) -> tuple[str, str]:
    with unit_of_work(engine) as session:
        org = create_organization(session, name=slug, slug=slug)
        news = create_search(
            session,
            org.id,
            name="AI",
            search_query={"query": query, "sources": [{"url": url} for url in urls]},
        )
        return org.id, news.id


def pipeline(engine: Engine, step: RunStep | RunPhases | None = None) -> StubBroker:
    """The real actors on an in-process broker; tests call them synchronously."""
    settings = Settings(fetch_allowlist="127.0.0.1")
    broker = build_pipeline(settings, engine, run_step=step, broker=StubBroker())
    assert isinstance(broker, StubBroker)
    return broker


def refresh_due_sources(engine: Engine, broker: StubBroker) -> list[str]:
    """What the scheduler's source tick sends, refreshed by the real actor (synchronously);
    returns the ids of the runs the refreshes started."""
    sent: list[str] = []
    Scheduler(engine, lambda _ids: None, enqueue_refreshes=sent.extend).refresh_sources()
    actor = broker.get_actor("refresh_source")
    started_before = run_ids(engine)
    for source_id in sent:
        actor(source_id)
    return sorted(run_ids(engine) - started_before)


def run_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(Run.id)))


def new_run(engine: Engine, org_id: str, news_id: str) -> str:
    with unit_of_work(engine) as session:
        run_id, _ = create_manual_run(session, org_id, news_id, now=utcnow())
        return run_id


def sources_by_path(engine: Engine) -> dict[str, Source]:
    with Session(engine) as session:
        return {
            s.url.rsplit(":", 1)[1].split("/", 1)[1]: s for s in session.scalars(select(Source))
        }


def failing_sources_seen_by_operator(engine: Engine) -> set[str]:
    with unit_of_work(engine) as session:
        key = create_operator_key(session, name="ops").key
    with TestClient(create_app(Settings(), engine)) as client:
        answer = client.get("/operator/sources/failing", headers={"x-api-key": key})
    assert answer.status_code == 200
    return {item["url"] for item in answer.json()["items"]}


def test_dead_and_empty_feeds_record_every_failure_and_the_run_succeeds(
    pg_engine: Engine,
) -> None:
    routes = {
        "/missing": Response(status=404),
        "/empty-feed": Response(body=EMPTY_FEED, headers={"Content-Type": "application/rss+xml"}),
        "/empty-body": Response(body=b""),
        "/html": Response(
            body=b"<!doctype html><html><body>Moved</body></html>",
            headers={"Content-Type": "text/html"},
        ),
    }
    broker = pipeline(pg_engine)
    with LocalHTTPServer(routes=routes) as server:
        urls = [server.url_for(path) for path in routes] + [refused_url()]
        org_id, news_id = make_search(pg_engine, urls)
        started = utcnow()
        assert refresh_due_sources(pg_engine, broker) == []  # no news: no run owed
        run_id = new_run(pg_engine, org_id, news_id)
        broker.get_actor("run_search")(run_id)

    with Session(pg_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert (run.state, run.attempts, run.error) == ("succeeded", 1, None)
        assert run.stats is not None and run.stats["storiesNew"] == 0
        assert session.scalar(select(func.count()).select_from(Story)) == 0
    found = sources_by_path(pg_engine)
    assert found["empty-feed"].status == "ok"
    errors = {
        "missing": "HTTP 404",
        "empty-body": "empty body",
        "html": "an HTML page",
        "refused": "Connection refused",
    }
    for path, error in errors.items():
        source = found[path]
        assert (source.status, source.failureCount) == ("failing", 1), path
        assert source.lastError is not None and error in source.lastError["error"], path
        assert source.nextFetchAt is not None and source.nextFetchAt >= started + BACKOFF_BASE
    assert failing_sources_seen_by_operator(pg_engine) == {
        s.url for path, s in found.items() if path != "empty-feed"
    }


def test_search_without_feeds_runs_with_zero_stories(pg_engine: Engine) -> None:
    org_id, news_id = make_search(pg_engine, [])
    run_id = new_run(pg_engine, org_id, news_id)
    pipeline(pg_engine).get_actor("run_search")(run_id)
    with Session(pg_engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and (run.state, run.error) == ("succeeded", None)
        assert run.stats is not None and run.stats["storiesNew"] == 0


class ScoringLost(ConnectionError):
    """The run's transaction failed (the database went away, say)."""


@pytest.mark.parametrize(
    ("error", "final_state"),
    [(ScoringLost("scoring lost its connection"), "queued"), (ValidationError("bad"), "failed")],
    ids=["transient", "permanent"],
)
def test_fetch_outcomes_stand_when_a_run_fails_and_its_retry_fetches_nothing(
    pg_engine: Engine, error: Exception, final_state: str
) -> None:
    def scoring(session: Session, run: ClaimedRun, now: datetime) -> dict[str, Any]:
        if run.attempt == 1:
            raise error
        return find_stories(session, run, now)

    routes = {
        "/feed": Response(body=FEED, headers={"ETag": '"v1"', "Last-Modified": "x"}),
        "/missing": Response(status=404),
    }
    broker = pipeline(pg_engine, RunPhases(step=scoring))
    with LocalHTTPServer(routes=routes) as server:
        make_search(pg_engine, [server.url_for(p) for p in routes], query="")
        [run_id] = refresh_due_sources(pg_engine, broker)  # the first news starts a run
        actor = broker.get_actor("run_search")
        with pytest.raises(RetryRun) if final_state == "queued" else nullcontext():
            actor(run_id)
        found = sources_by_path(pg_engine)
        with Session(pg_engine) as session:
            run = session.get(Run, run_id)
            assert run is not None and run.state == final_state
            stored = session.scalar(select(func.count()).select_from(Entry))
        assert (found["feed"].status, found["feed"].etag) == ("ok", '"v1"')
        assert stored is not None and stored > 0
        assert (found["missing"].status, found["missing"].failureCount) == ("failing", 1)
        if final_state == "queued":  # the retry scores what the refresh stored
            actor(run_id)
            assert server.hits == {"/feed": 1, "/missing": 1}
            with Session(pg_engine) as session:
                run = session.get(Run, run_id)
                assert run is not None and run.state == "succeeded"
                assert session.scalar(select(func.count()).select_from(Story)) == stored


def test_a_run_never_waits_for_a_fetch_and_a_source_in_flight_is_fetched_once(
    db_engine: Engine,
) -> None:
    release = threading.Event()

    def slow_feed(request: Request) -> Response:
        release.wait(10)
        return Response(body=FEED)

    broker = pipeline(db_engine)
    refresh_actor = broker.get_actor("refresh_source")
    with LocalHTTPServer(routes={"/feed": slow_feed}) as server:
        url = server.url_for("/feed")
        first = make_search(db_engine, [url], slug="a", query="")
        second = make_search(db_engine, [url], slug="b", query="")
        with Session(db_engine) as session:
            source_id = session.scalars(select(Source.id)).one()
        fetching = threading.Thread(target=refresh_actor, args=(source_id,))
        fetching.start()
        while server.hits["/feed"] == 0 and fetching.is_alive():
            threading.Event().wait(0.01)
        # The claim is committed and no lock is held while the feed is slow: a second
        # refresh of the source finds it taken and ends at once, and another
        # organization's run scores what is stored, without waiting or fetching.
        duplicate = threading.Thread(target=refresh_actor, args=(source_id,))
        duplicate.start()
        run_id = new_run(db_engine, *second)
        running = threading.Thread(target=broker.get_actor("run_search"), args=(run_id,))
        running.start()
        for thread in (duplicate, running):
            thread.join(10)
            assert not thread.is_alive(), "waited on another worker's fetch"
        release.set()
        fetching.join(10)
        assert server.hits["/feed"] == 1
    with Session(db_engine) as session:
        run = session.get_one(Run, run_id)
        assert run.stats is not None and run.stats["storiesNew"] == 0
        # The first news of the source started a run of each follower.
        owed = session.scalars(select(Run).where(Run.id != run_id)).all()
    assert sorted(r.newsId for r in owed) == sorted([first[1], second[1]])
    run_actor = broker.get_actor("run_search")
    for run in owed:
        run_actor(run.id)
    with Session(db_engine) as session:
        counts = {
            news_id: session.scalar(select(func.count()).where(Story.newsId == news_id)) or 0
            for news_id in (first[1], second[1])
        }
    assert counts[first[1]] == counts[second[1]] > 0  # nothing lost to either search


def test_parser_crash_is_recorded_on_the_source_and_runs_go_on(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_parser(*args: object, **kwargs: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ingest_sources, "parse_feed", broken_parser)
    broker = pipeline(pg_engine)
    with LocalHTTPServer(routes={"/feed": Response(body=FEED)}) as server:
        org_id, news_id = make_search(pg_engine, [server.url_for("/feed")])
        refresh_due_sources(pg_engine, broker)
        run_id = new_run(pg_engine, org_id, news_id)
        broker.get_actor("run_search")(run_id)
    with Session(pg_engine) as session:
        run = session.get(Run, run_id)
        source = session.scalars(select(Source)).one()
    assert run is not None and run.state == "succeeded"
    assert source.status == "failing" and source.lastError is not None
    assert "parser error: RuntimeError: parser bug" in source.lastError["error"]
