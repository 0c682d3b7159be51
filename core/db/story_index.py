"""The full-text index of stories: its DDL on PostgreSQL and SQLite, and the expressions
that query it (:mod:`core.stories.search`).

- PostgreSQL: a GIN expression index on ``to_tsvector(STORY_TEXT_CONFIG, title || ' ' ||
  snippet)``; a query must use the very same expression to reach it.
- SQLite (embedded mode): an FTS5 table ``storiesSearch`` holding each story's title and
  snippet under the story's rowid, with its id kept (unindexed) for the join, filled by
  triggers on ``stories``. It keeps its own copy of the text (not an external-content
  table), so highlights never read a row that moved. The triggers go with the table when
  a migration rebuilds ``stories`` (``batch_alter_table``): that migration calls
  :func:`install_sqlite_story_search` again, which rebuilds the index from the rows.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# The statements are built from the constants of this module only.
# ruff: noqa: S608

#: Text search configuration of the PostgreSQL index: English stemming ("elections"
#: finds "election"), the language most monitored sources publish in; words of other
#: languages still match exactly.
STORY_TEXT_CONFIG = "english"
#: The indexed document of a story (PostgreSQL), as SQL over the ``stories`` table.
PG_DOCUMENT = "title || ' ' || coalesce(snippet, '')"
#: The indexed vector; queries must repeat it verbatim to use the index.
PG_VECTOR = f"to_tsvector('{STORY_TEXT_CONFIG}', {PG_DOCUMENT})"
PG_INDEX_NAME = "ix_stories_search"
PG_INDEX_DDL = f'CREATE INDEX IF NOT EXISTS "{PG_INDEX_NAME}" ON stories USING gin ({PG_VECTOR})'

#: The FTS5 table of embedded mode.
SQLITE_TABLE = "storiesSearch"
#: Porter stemming over Unicode words, accents folded: close to PostgreSQL's english.
SQLITE_TOKENIZER = "porter unicode61 remove_diacritics 2"

_SQLITE_DDL = (
    f'CREATE VIRTUAL TABLE "{SQLITE_TABLE}" USING fts5('
    f"title, snippet, storyId UNINDEXED, tokenize = '{SQLITE_TOKENIZER}')",
    f'CREATE TRIGGER "{SQLITE_TABLE}_insert" AFTER INSERT ON stories BEGIN '
    f'INSERT INTO "{SQLITE_TABLE}"(rowid, title, snippet, storyId) '
    "VALUES (new.rowid, new.title, coalesce(new.snippet, ''), new.id); END",
    f'CREATE TRIGGER "{SQLITE_TABLE}_delete" AFTER DELETE ON stories BEGIN '
    f'DELETE FROM "{SQLITE_TABLE}" WHERE rowid = old.rowid; END',
    f'CREATE TRIGGER "{SQLITE_TABLE}_update" AFTER UPDATE OF title, snippet ON stories BEGIN '
    f"UPDATE \"{SQLITE_TABLE}\" SET title = new.title, snippet = coalesce(new.snippet, '') "
    "WHERE rowid = new.rowid; END",
)


def drop_sqlite_story_search(conn: Connection) -> None:
    """Drop the FTS5 table and its triggers (SQLite)."""
    for trigger in ("insert", "delete", "update"):
        conn.execute(text(f'DROP TRIGGER IF EXISTS "{SQLITE_TABLE}_{trigger}"'))
    conn.execute(text(f'DROP TABLE IF EXISTS "{SQLITE_TABLE}"'))


def install_sqlite_story_search(conn: Connection) -> None:
    """(Re)create the FTS5 table and triggers, and index every story (SQLite)."""
    drop_sqlite_story_search(conn)
    for statement in _SQLITE_DDL:
        conn.execute(text(statement))
    conn.execute(
        text(
            f'INSERT INTO "{SQLITE_TABLE}"(rowid, title, snippet, storyId) '
            "SELECT rowid, title, coalesce(snippet, ''), id FROM stories"
        )
    )


def is_story_index(name: str | None) -> bool:
    """Whether a schema object is part of the full-text index, which lives outside the
    models (an expression index, a virtual table and its shadow tables)."""
    return bool(name) and (name == PG_INDEX_NAME or str(name).startswith(SQLITE_TABLE))
