"""deliveryAttempts (each attempt of a delivery, with its outcome); the audit log's index
for an organization's pages

Revision ID: 0011_audit
Revises: 0010_tenant
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_audit"
down_revision: str | None = "0010_tenant"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveryAttempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("deliveryId", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("statusCode", sa.Integer(), nullable=True),
        sa.Column("durationMs", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("startedAt", sa.DateTime(timezone=True), nullable=False),
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
        sa.CheckConstraint(
            "\"outcome\" IN ('sent', 'failed', 'unknown')",
            name=op.f("ck_deliveryAttempts_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["deliveryId"],
            ["deliveries.id"],
            name=op.f("fk_deliveryAttempts_deliveryId_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_deliveryAttempts_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveryAttempts")),
    )
    op.create_index(
        op.f("ix_deliveryAttempts_organizationId"), "deliveryAttempts", ["organizationId"]
    )
    op.create_index(op.f("ix_deliveryAttempts_deliveryId"), "deliveryAttempts", ["deliveryId"])
    op.create_index(op.f("ix_auditLogs_organizationId_id"), "auditLogs", ["organizationId", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_auditLogs_organizationId_id"), table_name="auditLogs")
    op.drop_index(op.f("ix_deliveryAttempts_deliveryId"), table_name="deliveryAttempts")
    op.drop_index(op.f("ix_deliveryAttempts_organizationId"), table_name="deliveryAttempts")
    op.drop_table("deliveryAttempts")
