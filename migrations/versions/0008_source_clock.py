"""sources on their own clock: queuedUntil (a refresh is on its way), fetchInterval

Revision ID: 0008_source_clock
Revises: 0007_story_duplicates
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_source_clock"
down_revision: str | None = "0007_story_duplicates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("queuedUntil", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sources", sa.Column("fetchInterval", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("fetchInterval")
        batch.drop_column("queuedUntil")
