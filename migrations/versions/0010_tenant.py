"""feedTokens (a search's public feed secret, hashed); full-text search over stories

PostgreSQL gets a GIN index on the stories' text vector, SQLite an FTS5 table kept in
step by triggers (both in :mod:`core.db.story_index`). A later migration that rebuilds ``stories`` on
SQLite (``batch_alter_table``) drops the triggers with the old table: it must call
``install_sqlite_story_search`` again, which also rebuilds the index.

Revision ID: 0010_tenant
Revises: 0009_digest
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.story_index import (
    PG_INDEX_DDL,
    PG_INDEX_NAME,
    drop_sqlite_story_search,
    install_sqlite_story_search,
)

revision: str = "0010_tenant"
down_revision: str | None = "0009_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedTokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("tokenHash", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=16), nullable=False),
        sa.Column(
            "createdAt",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updatedAt",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_feedTokens_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_feedTokens_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedTokens")),
        sa.UniqueConstraint("newsId", name=op.f("uq_feedTokens_newsId")),
        sa.UniqueConstraint("tokenHash", name=op.f("uq_feedTokens_tokenHash")),
    )
    op.create_index(
        op.f("ix_feedTokens_organizationId"), "feedTokens", ["organizationId"], unique=False
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_INDEX_DDL)
    elif bind.dialect.name == "sqlite":
        install_sqlite_story_search(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f'DROP INDEX IF EXISTS "{PG_INDEX_NAME}"')
    elif bind.dialect.name == "sqlite":
        drop_sqlite_story_search(bind)
    op.drop_index(op.f("ix_feedTokens_organizationId"), table_name="feedTokens")
    op.drop_table("feedTokens")
