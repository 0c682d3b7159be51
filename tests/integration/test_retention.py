"""Retention: old rows go in small batches, what must stay stays (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db.models import (
    AuditLog,
    Delivery,
    DeliveryAttempt,
    Digest,
    DigestLinkUse,
    Entry,
    News,
    NewsSource,
    Organization,
    RelevanceModel,
    Run,
    Source,
    Story,
    StoryFeedback,
    Verification,
)
from core.db.session import make_engine, unit_of_work
from core.ops.retention import (
    MODEL_VERSIONS_KEPT,
    RetentionPolicy,
    exclusive_pruner,
    prunable,
    prune,
)
from scheduler.loop import Scheduler
from tests.e2e.test_cli import newsmon
from tests.support import factories as f
from tests.support.databases import fresh_pg_database
from tests.support.services import require_service

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=1)
POLICY = RetentionPolicy()


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _source(session: Session, url: str, when: datetime) -> Source:
    source = Source(url=url, createdAt=when, lastFetchedAt=when)
    session.add(source)
    session.flush()
    return source


def _entry(session: Session, source: Source, url: str, when: datetime) -> Entry:
    entry = Entry(
        sourceId=source.id, canonicalUrl=url, url=url, title=url, contentHash=url, createdAt=when
    )
    session.add(entry)
    session.flush()
    return entry


def _digest(
    session: Session, org: Organization, search: News, key: str, when: datetime, state: str
) -> Digest:
    channel = f.channel(session, org)
    digest = Digest(
        organizationId=search.organizationId, newsId=search.id, digestKey=key, createdAt=when
    )
    session.add(digest)
    session.flush()
    delivery = Delivery(
        organizationId=search.organizationId,
        channelId=channel.id,
        digestId=digest.id,
        state=state,
    )
    session.add(delivery)
    session.flush()
    for number, outcome in ((1, "failed"), (2, "sent")):  # its history: two attempts
        session.add(
            DeliveryAttempt(
                organizationId=search.organizationId,
                deliveryId=delivery.id,
                attempt=number,
                outcome=outcome,
                startedAt=when,
            )
        )
    return digest


def _world(engine: Engine) -> dict[str, str]:
    """One old and one recent row of every kind, plus the old rows that must stay."""
    ids: dict[str, str] = {}
    with unit_of_work(engine) as session:
        org = f.org(session, "keep")
        search = f.news(session, org)
        followed = _source(session, "https://followed.example/feed", OLD)
        session.add(NewsSource(organizationId=org.id, newsId=search.id, sourceId=followed.id))
        ids["unfollowed_old"] = _source(session, "https://gone.example/feed", OLD).id
        ids["unfollowed_recent"] = _source(session, "https://new.example/feed", RECENT).id
        ids["followed"] = followed.id
        for name, expires in (("link_expired", NOW - timedelta(days=1)), ("link_live", NOW)):
            use = DigestLinkUse(
                organizationId=org.id, tokenHash=name, purpose="feedback", expiresAt=expires
            )
            session.add(use)
            session.flush()
            ids[name] = use.id
        ids["entry_old"] = _entry(session, followed, "https://followed.example/1", OLD).id
        ids["entry_recent"] = _entry(session, followed, "https://followed.example/2", RECENT).id
        ids["story_old"] = f.story(session, search, "https://a.example/old", foundAt=OLD).id
        ids["story_recent"] = f.story(session, search, "https://a.example/new", foundAt=RECENT).id
        labelled = f.story(session, search, "https://a.example/labelled", foundAt=OLD)
        ids["story_labelled"] = labelled.id
        session.add(
            StoryFeedback(
                organizationId=org.id, newsId=search.id, storyId=labelled.id, label="relevant"
            )
        )
        for name, when, state in (
            ("digest_old", OLD, "sent"),
            ("digest_recent", RECENT, "sent"),
            ("digest_old_pending", OLD, "pending"),
        ):
            ids[name] = _digest(session, org, search, name, when, state).id
        for name, state, finished in (
            ("run_old", "succeeded", OLD),
            ("run_recent", "failed", RECENT),
            ("run_old_running", "running", None),
        ):
            run = Run(
                organizationId=org.id,
                newsId=search.id,
                scheduledFor=OLD,
                state=state,
                finishedAt=finished,
                trigger="manual",
            )
            session.add(run)
            session.flush()
            ids[name] = run.id
        for name, when in (("audit_old", OLD), ("audit_recent", RECENT)):
            log = AuditLog(organizationId=org.id, actorType="apikey", action="x", createdAt=when)
            session.add(log)
            session.flush()
            ids[name] = log.id
        for name, expires in (("verification_old", OLD), ("verification_live", NOW)):
            row = Verification(identifier=name, value="v", expiresAt=expires)
            session.add(row)
            session.flush()
            ids[name] = row.id
        for version in range(1, MODEL_VERSIONS_KEPT + 3):
            session.add(
                RelevanceModel(organizationId=org.id, newsId=search.id, version=version, model=b"m")
            )
    return ids


def _exists(session: Session, model: type, row_id: str) -> bool:
    return session.get(model, row_id) is not None


def test_prune_deletes_only_what_the_policy_lets_go(db_engine: Engine):
    ids = _world(db_engine)
    with unit_of_work(db_engine) as session:
        expected = prunable(session, POLICY, now=NOW)
    report = prune(db_engine, POLICY, now=NOW)
    assert report.complete
    assert report.deleted == expected
    assert expected == {
        "deliveryAttempts": 2,
        "digests": 1,
        "stories": 1,
        "entries": 1,
        "sources": 1,
        "runs": 1,
        "auditLogs": 1,
        "verifications": 1,
        "invitations": 0,
        "digestLinkUses": 1,
        "relevanceModels": 2,
    }
    with unit_of_work(db_engine) as session:
        gone = [
            (Story, "story_old"),
            (Entry, "entry_old"),
            (Source, "unfollowed_old"),
            (Digest, "digest_old"),
            (Run, "run_old"),
            (AuditLog, "audit_old"),
            (Verification, "verification_old"),
            (DigestLinkUse, "link_expired"),
        ]
        kept = [
            (Story, "story_recent"),
            (Story, "story_labelled"),  # feedback is the search's training data
            (Entry, "entry_recent"),
            (Source, "followed"),  # a search still follows it
            (Source, "unfollowed_recent"),
            (Digest, "digest_recent"),
            (Digest, "digest_old_pending"),  # its delivery has not gone out yet
            (Run, "run_recent"),
            (Run, "run_old_running"),  # unfinished
            (AuditLog, "audit_recent"),
            (Verification, "verification_live"),
            (DigestLinkUse, "link_live"),  # the link still works: its use must be known
        ]
        assert [name for model, name in gone if _exists(session, model, ids[name])] == []
        assert [name for model, name in kept if not _exists(session, model, ids[name])] == []
        versions = session.scalars(select(RelevanceModel.version).order_by(RelevanceModel.version))
        assert list(versions) == [3, 4, 5]
        # The old digest's delivery and its attempts went with it; the others' stayed.
        assert _count(session, Delivery) == 2
        assert _count(session, DeliveryAttempt) == 4
    assert prune(db_engine, POLICY, now=NOW).total == 0


def test_zero_days_keeps_forever(db_engine: Engine):
    _world(db_engine)
    forever = RetentionPolicy(stories=None, entries=None, runs=None, deliveries=None, audit=None)
    report = prune(db_engine, forever, now=NOW)
    assert set(report.deleted) == {
        "verifications",
        "invitations",
        "digestLinkUses",
        "relevanceModels",
    }
    with unit_of_work(db_engine) as session:
        assert _count(session, Story) == 3
        assert _count(session, Run) == 3


def test_batches_are_small_and_a_time_boxed_pass_resumes(db_engine: Engine):
    with unit_of_work(db_engine) as session:
        org = f.org(session, "many")
        search = f.news(session, org)
        for n in range(7):
            f.story(session, search, f"https://a.example/{n}", foundAt=OLD)
    only_stories = RetentionPolicy(entries=None, runs=None, deliveries=None, audit=None)
    first = prune(db_engine, only_stories, now=NOW, batch_size=2, budget_s=0)
    assert not first.complete
    assert first.deleted["stories"] == 2
    rest = prune(db_engine, only_stories, now=NOW, batch_size=2)
    assert rest.complete and rest.deleted["stories"] == 5


def test_scheduler_prunes_when_due_and_then_waits(db_engine: Engine):
    with unit_of_work(db_engine) as session:
        search = f.news(session, f.org(session, "sched"))
        f.story(
            session, search, "https://a.example/ancient", foundAt=datetime(2000, 1, 1, tzinfo=UTC)
        )
    scheduler = Scheduler(
        db_engine, lambda _ids: None, retention=POLICY, prune_every=timedelta(hours=1)
    )
    assert scheduler.prune_if_due() == 1
    with unit_of_work(db_engine) as session:
        f.story(
            session, search, "https://a.example/ancient2", foundAt=datetime(2000, 1, 1, tzinfo=UTC)
        )
    assert scheduler.prune_if_due() == 0  # not due again for an hour
    assert Scheduler(db_engine, lambda _ids: None).prune_if_due() == 0  # no policy: never


def test_one_replica_prunes_at_a_time_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database() as url:
        engine = make_engine(url)
        try:
            with exclusive_pruner(engine) as first, exclusive_pruner(engine) as second:
                assert (first, second) == (True, False)
                replica = Scheduler(
                    engine, lambda _ids: None, retention=POLICY, prune_every=timedelta(0)
                )
                assert replica.prune_if_due() == 0
            with exclusive_pruner(engine) as again:
                assert again  # released
        finally:
            engine.dispose()


@pytest.mark.parametrize("dry_run", [True, False])
def test_cli_prune(tmp_path, dry_run: bool):
    assert newsmon("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")
    with unit_of_work(engine) as session:
        search = f.news(session, f.org(session, "cli"))
        f.story(
            session, search, "https://a.example/ancient", foundAt=datetime(2000, 1, 1, tzinfo=UTC)
        )
    args = ("db", "prune", "--dry-run") if dry_run else ("db", "prune")
    result = newsmon(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    counts = out["wouldDelete"] if dry_run else out["deleted"]
    assert counts["stories"] == 1
    with unit_of_work(engine) as session:
        assert _count(session, Story) == (1 if dry_run else 0)
    engine.dispose()
