"""Migration 0002_url_keys on rows stored under the earlier rule, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.db.migrate import downgrade, upgrade
from core.db.models import Entry, Source, Story
from core.db.session import make_engine
from core.news.searches import create_search
from core.tenancy.organizations import create_organization
from tests.support.databases import fresh_pg_database
from tests.support.services import require_service

#: URLs as the earlier rule stored them: one article twice (http and https), one anchor.
STORED = ["http://www.example.com/a", "https://example.com/a", "https://example.com/b#a1"]
#: Rows of the 0001 schema, written with SQL (the models are the new schema).
ENTRY_SQL = text(
    'INSERT INTO entries (id, "sourceId", "canonicalUrl", url, title, "contentHash")'
    " VALUES (:id, :source, :url, :url, 't', 'h')"
)
STORY_SQL = text(
    'INSERT INTO stories (id, "organizationId", "newsId", title, url, "relevanceScore",'
    ' "isFiltered", "wasDelivered", "foundAt")'
    " VALUES (:id, :org, :news, 't', :url, 0, false, true, CURRENT_TIMESTAMP)"
)


def _backfill_keeps_every_row_and_keys_the_oldest(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        with Session(engine) as s, s.begin():
            org = create_organization(s, name="Acme", slug="acme")
            news = create_search(
                s,
                org.id,
                name="s",
                search_query={"query": "", "sources": [{"url": "https://f.example/rss"}]},
            )
            ids = {"org": org.id, "news": news.id, "source": s.scalars(select(Source.id)).one()}
        downgrade(engine, "0001")
        with engine.begin() as conn:
            for n, stored in enumerate(STORED):
                conn.execute(ENTRY_SQL, {"id": f"e{n}", "source": ids["source"], "url": stored})
                row = {"id": f"s{n}", "org": ids["org"], "news": ids["news"], "url": stored}
                conn.execute(STORY_SQL, row)
        upgrade(engine)
        expected = ["example.com/a", "https://example.com/a", "example.com/b#a1"]
        with Session(engine) as s:
            assert s.scalars(select(Entry.urlKey).order_by(Entry.id)).all() == expected
            assert s.scalars(select(Story.urlKey).order_by(Story.id)).all() == expected
            assert s.scalars(select(Story.url).order_by(Story.id)).all() == STORED
        downgrade(engine, "0001")  # and back: every row fits the old constraint again
        upgrade(engine)
    finally:
        engine.dispose()


def test_url_keys_are_filled_in_on_sqlite(tmp_path: Path) -> None:
    _backfill_keeps_every_row_and_keys_the_oldest(f"sqlite:///{tmp_path / 'm.db'}")


def test_url_keys_are_filled_in_on_postgresql() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database(migrate=False) as url:
        _backfill_keeps_every_row_and_keys_the_oldest(url)
