"""URL keys: entries and stories deduplicated on a key apart from the URL shown, item ids

Revision ID: 0006_url_keys
Revises: 0005_entry_date_issue
Create Date: 2026-12-02 09:00:00

Adds ``entries.urlKey`` and ``stories.urlKey`` (the key of
``core.feeds.canonical_url.canonicalize``) and moves the UNIQUE constraints onto them
(``(sourceId, urlKey)``, ``(newsId, urlKey)``); ``stories.url`` and
``entries.canonicalUrl`` stay the URLs shown. Existing rows get the key of the URL they
stored, oldest first (ids sort by creation time). A row whose key an older row of the same
source or search already holds (``http`` and ``https`` of one article, stored twice
before) keeps its stored URL as its key: that starts with a scheme, which no new key
does, so nothing is merged or deleted here. An item whose fragment the earlier rule had
dropped (``/a#section``) gets a new key at its next fetch and is announced once more.

Adds ``entries.guidKey`` (indexed): an item id unique across feeds
(``core.feeds.canonical_url.guid_key``), so a copy of a stored item under another link is
the same story. It is set for entries stored from now on; older entries have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.feeds.canonical_url import canonicalize

revision: str = "0006_url_keys"
down_revision: str | None = "0005_entry_date_issue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Rows read and updated per round trip while keys are filled in.
BACKFILL_BATCH = 1000
_KEY = sa.String(length=2048)


def upgrade() -> None:
    for table in ("entries", "stories"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("urlKey", _KEY, nullable=True))
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("guidKey", _KEY, nullable=True))
        batch.create_index("ix_entries_guidKey", ["guidKey"], unique=False)
    _fill_keys("entries", "sourceId", "canonicalUrl")
    _fill_keys("stories", "newsId", "url")
    with op.batch_alter_table("entries") as batch:
        batch.alter_column("urlKey", existing_type=_KEY, nullable=False)
        batch.drop_constraint("uq_entries_sourceId_canonicalUrl", type_="unique")
        batch.create_unique_constraint("uq_entries_sourceId_urlKey", ["sourceId", "urlKey"])
        batch.drop_index("ix_entries_canonicalUrl")
    with op.batch_alter_table("stories") as batch:
        batch.alter_column("urlKey", existing_type=_KEY, nullable=False)
        batch.drop_constraint("uq_stories_newsId_url", type_="unique")
        batch.create_unique_constraint("uq_stories_newsId_urlKey", ["newsId", "urlKey"])


def downgrade() -> None:
    # Rows that share a stored URL now (one article under two keys) would break the old
    # constraint: the newer ones go, as the old rule would never have stored them.
    for table, scope, url in (
        ("entries", "sourceId", "canonicalUrl"),
        ("stories", "newsId", "url"),
    ):
        rows = sa.table(table, sa.column("id"), sa.column(scope), sa.column(url))
        older = rows.alias("older")
        op.execute(
            rows.delete().where(
                sa.exists().where(
                    older.c[scope] == rows.c[scope],
                    older.c[url] == rows.c[url],
                    older.c.id < rows.c.id,
                )
            )
        )
    with op.batch_alter_table("stories") as batch:
        batch.drop_constraint("uq_stories_newsId_urlKey", type_="unique")
        batch.create_unique_constraint("uq_stories_newsId_url", ["newsId", "url"])
        batch.drop_column("urlKey")
    with op.batch_alter_table("entries") as batch:
        batch.drop_constraint("uq_entries_sourceId_urlKey", type_="unique")
        batch.create_unique_constraint(
            "uq_entries_sourceId_canonicalUrl", ["sourceId", "canonicalUrl"]
        )
        batch.create_index("ix_entries_canonicalUrl", ["canonicalUrl"], unique=False)
        batch.drop_index("ix_entries_guidKey")
        batch.drop_column("guidKey")
        batch.drop_column("urlKey")


def _fill_keys(table_name: str, scope: str, url: str) -> None:
    """Set ``urlKey`` of every row from its ``url`` column, per source or search, in id
    order (so only one owner's keys are held in memory at a time)."""
    bind = op.get_bind()
    table = sa.table(
        table_name, sa.column("id"), sa.column(scope), sa.column(url), sa.column("urlKey")
    )
    update = (
        table.update()
        .where(table.c.id == sa.bindparam("row_id"))
        .values(urlKey=sa.bindparam("key"))
    )
    taken: set[str] = set()
    owner_now, last_id = "", ""
    while True:
        rows = bind.execute(
            sa.select(table.c.id, table.c[scope], table.c[url])
            .where(sa.tuple_(table.c[scope], table.c.id) > sa.tuple_(owner_now, last_id))
            .order_by(table.c[scope], table.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row_id, owner, stored in rows:
            if owner != owner_now:
                owner_now, taken = owner, set()
            key = canonicalize(stored) or stored
            if key in taken:
                key = stored
            taken.add(key)
            changes.append({"row_id": row_id, "key": key})
            last_id = row_id
        bind.execute(update, changes)
