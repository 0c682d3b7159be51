"""stories.duplicateOfId: the story a near-duplicate is sent with instead of on its own

Before, every story clustered under another was held back, whatever happened to that
story. Rows already clustered keep that outcome (duplicateOfId = clusterId), so an
upgrade sends no backlog of old copies; new stories are decided one by one.

Revision ID: 0007_story_duplicates
Revises: 0006_url_keys
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_story_duplicates"
down_revision: str | None = "0006_url_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("duplicateOfId", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_stories_duplicateOfId_stories"),
            "stories",
            ["duplicateOfId"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(op.f("ix_stories_duplicateOfId"), ["duplicateOfId"], unique=False)
    op.execute(
        'UPDATE stories SET "duplicateOfId" = "clusterId" '
        'WHERE "clusterId" IS NOT NULL AND "clusterId" <> id'
    )


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_index(op.f("ix_stories_duplicateOfId"))
        batch.drop_constraint(op.f("fk_stories_duplicateOfId_stories"), type_="foreignkey")
        batch.drop_column("duplicateOfId")
