"""entries.dateIssue: why an entry's publishedAt is the fetch time

Revision ID: 0005_entry_date_issue
Revises: 0004_remask_channel_urls
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_entry_date_issue"
down_revision: str | None = "0004_remask_channel_urls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("dateIssue", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("dateIssue")
