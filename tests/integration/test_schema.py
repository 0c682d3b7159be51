"""The data model as the database enforces it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, PrimaryKeyConstraint, UniqueConstraint, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.base import Base
from core.db.migrate import current_revision, downgrade, schema_drift, upgrade
from core.db.models import (
    ApiKey,
    Delivery,
    Digest,
    Member,
    NewsChannel,
    Organization,
    Run,
    Schedule,
    Story,
    User,
)
from core.db.session import make_engine
from tests.support import factories as f
from tests.support.databases import fresh_pg_database
from tests.support.services import require_service

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _migration_round_trip(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        assert current_revision(engine) is not None
        assert schema_drift(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert schema_drift(engine) == []
    finally:
        engine.dispose()


def test_migrations_match_models_and_downgrade_on_sqlite(tmp_path):
    _migration_round_trip(f"sqlite:///{tmp_path / 'm.db'}")


def test_migrations_match_models_and_downgrade_on_postgresql():
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database(migrate=False) as url:
        _migration_round_trip(url)


def test_every_foreign_key_is_indexed():
    for table in Base.metadata.sorted_tables:
        indexed = [tuple(c.name for c in ix.columns) for ix in table.indexes]
        indexed += [
            tuple(c.name for c in uc.columns)
            for uc in table.constraints
            if isinstance(uc, UniqueConstraint | PrimaryKeyConstraint)
        ]
        for fk in table.foreign_key_constraints:
            cols = tuple(c.name for c in fk.columns)
            covered = any(ix[: len(cols)] == cols for ix in indexed) or all(
                any(ix[:1] == (c,) for ix in indexed) for c in cols
            )
            assert covered, f"{table.name}{cols} has no index"


def test_every_table_has_created_and_updated_at():
    for table in Base.metadata.sorted_tables:
        assert {"createdAt", "updatedAt"} <= set(table.columns.keys()), table.name


def test_story_is_unique_per_search_and_url_not_globally(db_engine: Engine):
    with Session(db_engine) as s:
        a, b = f.org(s, "a"), f.org(s, "b")
        news_a, news_b = f.news(s, a), f.news(s, b)
        f.story(s, news_a, "https://example.com/x")
        f.story(s, news_b, "https://example.com/x")  # another tenant: allowed
        s.commit()
        with pytest.raises(IntegrityError):
            f.story(s, news_a, "https://example.com/x")
        s.rollback()
        assert s.scalar(select(func.count()).select_from(Story)) == 2


def test_run_is_unique_per_schedule_and_fire_time(db_engine: Engine):
    with Session(db_engine) as s:
        search = f.news(s, f.org(s))
        sched = f.schedule(s, search)
        fields = {"organizationId": search.organizationId, "newsId": search.id}
        s.add(Run(scheduleId=sched.id, scheduledFor=WHEN, **fields))
        s.commit()
        s.add(Run(scheduleId=sched.id, scheduledFor=WHEN, **fields))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        # Manual runs have no schedule: several may exist for one time, but only one
        # of them may be waiting in the queue.
        s.add_all(
            [
                Run(trigger="manual", scheduledFor=WHEN, state=st, **fields)
                for st in ("queued", "succeeded", "failed")
            ]
        )
        s.commit()
        s.add(Run(trigger="manual", scheduledFor=WHEN, **fields))
        with pytest.raises(IntegrityError):
            s.commit()


def test_deleting_an_organization_cascades_to_everything_it_owns(db_engine: Engine):
    with Session(db_engine) as s:
        a, b = f.org(s, "a"), f.org(s, "b")
        for o in (a, b):
            search = f.news(s, o)
            sched = f.schedule(s, search)
            story = f.story(s, search, "https://example.com/1")
            chan = f.channel(s, o)
            s.add(NewsChannel(organizationId=o.id, newsId=search.id, channelId=chan.id))
            run = Run(organizationId=o.id, newsId=search.id, scheduleId=sched.id, scheduledFor=WHEN)
            digest = Digest(organizationId=o.id, newsId=search.id, digestKey="d1")
            s.add_all([run, digest])
            s.flush()
            s.add(Delivery(organizationId=o.id, channelId=chan.id, digestId=digest.id))
            s.add(ApiKey(organizationId=o.id, key=f"hash-{o.slug}"))
            user = User(name=o.slug, email=f"{o.slug}@example.com")
            s.add(user)
            s.flush()
            s.add(Member(organizationId=o.id, userId=user.id, role="owner"))
            assert story.id
        s.commit()
        s.delete(s.get(Organization, a.id))
        s.commit()
        for model in (Schedule, Story, NewsChannel, Run, Digest, Delivery, ApiKey, Member):
            owners = set(s.scalars(select(model.organizationId)))
            assert owners == {b.id}, model.__tablename__


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Member, "role", "superuser"),
        (Run, "state", "exploded"),
        (Schedule, "catchUp", "never"),
        (Delivery, "state", "lost"),
    ],
)
def test_enum_columns_reject_unknown_values(db_engine: Engine, model, field, value):
    with Session(db_engine) as s:
        o = f.org(s)
        search = f.news(s, o)
        sched = f.schedule(s, search)
        chan = f.channel(s, o)
        digest = Digest(organizationId=o.id, newsId=search.id, digestKey="k")
        user = User(name="u", email="u@example.com")
        s.add_all([digest, user])
        s.flush()
        rows = {
            Member: Member(organizationId=o.id, userId=user.id),
            Run: Run(organizationId=o.id, newsId=search.id, scheduleId=sched.id, scheduledFor=WHEN),
            Schedule: Schedule(organizationId=o.id, newsId=search.id, cronExpr="* * * * *"),
            Delivery: Delivery(organizationId=o.id, channelId=chan.id, digestId=digest.id),
        }
        row = rows[model]
        setattr(row, field, value)
        s.add(row)
        with pytest.raises(IntegrityError):
            s.flush()


def test_search_and_channel_of_different_organizations_cannot_be_linked(db_engine: Engine):
    with Session(db_engine) as s:
        a, b = f.org(s, "a"), f.org(s, "b")
        search_a, chan_b = f.news(s, a), f.channel(s, b)
        s.add(NewsChannel(organizationId=a.id, newsId=search_a.id, channelId=chan_b.id))
        with pytest.raises(IntegrityError):
            s.flush()


def test_child_rows_cannot_claim_another_organization(db_engine: Engine):
    with Session(db_engine) as s:
        a, b = f.org(s, "a"), f.org(s, "b")
        search_a = f.news(s, a)
        s.add(Story(organizationId=b.id, newsId=search_a.id, url="u", title="t", foundAt=WHEN))
        with pytest.raises(IntegrityError):
            s.flush()


def test_api_key_quota_never_goes_negative(db_engine: Engine):
    with Session(db_engine) as s:
        o = f.org(s)
        s.add(ApiKey(organizationId=o.id, key="h", remaining=-1))
        with pytest.raises(IntegrityError):
            s.flush()


def test_timestamps_come_back_aware_utc(db_engine: Engine):
    with Session(db_engine) as s:
        search = f.news(s, f.org(s))
        sched = f.schedule(s, search, nextRun=WHEN)
        s.commit()
        sched_id = sched.id
    with Session(db_engine) as s:
        loaded = s.get(Schedule, sched_id)
        assert loaded is not None
        assert loaded.nextRun == WHEN
        assert loaded.nextRun.utcoffset() is not None
        assert loaded.createdAt.utcoffset() is not None


def test_naive_datetimes_are_refused(sqlite_engine: Engine):
    with Session(sqlite_engine) as s:
        search = f.news(s, f.org(s))
        f.schedule(s, search)
        s.add(
            Schedule(
                organizationId=search.organizationId,
                newsId=search.id,
                cronExpr="x",
                nextRun=datetime(2026, 1, 1),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            s.flush()
