"""retention and metrics: indexes the pruning and gauge queries walk

Revision ID: 0002_retention
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_retention"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) pairs that get a plain index.
INDEXES = (
    ("runs", "finishedAt"),
    ("digests", "createdAt"),
    ("entries", "createdAt"),
    ("auditLogs", "createdAt"),
    ("deliveries", "sentAt"),
)


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
