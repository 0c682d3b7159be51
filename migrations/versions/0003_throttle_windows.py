"""throttle windows: per-organization fixed-window counters

Revision ID: 0003_throttle_windows
Revises: 0002_retention
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_throttle_windows"
down_revision: str | None = "0002_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "throttleWindows",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=True),
        sa.Column("windowStart", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
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
        sa.CheckConstraint('"hits" >= 0', name=op.f("ck_throttleWindows_hits_not_negative")),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_throttleWindows_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_throttleWindows")),
    )
    op.create_index(
        op.f("ix_throttleWindows_organizationId"),
        "throttleWindows",
        ["organizationId"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_throttleWindows_organizationId"), table_name="throttleWindows")
    op.drop_table("throttleWindows")
