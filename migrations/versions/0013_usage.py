"""usage counters per organization and month; organization limits; held deliveries

Revision ID: 0013_usage
Revises: 0012_health_alerts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_usage"
down_revision: str | None = "0012_health_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIMITS = ("maxSearches", "maxSources", "maxDeliveriesPerDay")


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("fetches", sa.BigInteger(), nullable=False),
        sa.Column("storiesStored", sa.BigInteger(), nullable=False),
        sa.Column("deliveriesSent", sa.BigInteger(), nullable=False),
        sa.Column("apiRequests", sa.BigInteger(), nullable=False),
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
            '"fetches" >= 0 AND "storiesStored" >= 0 AND "deliveriesSent" >= 0 '
            'AND "apiRequests" >= 0',
            name=op.f("ck_usage_counters_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_usage_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organizationId", "month", name=op.f("pk_usage")),
    )
    op.create_index(op.f("ix_usage_month"), "usage", ["month"], unique=False)
    # Plain ADD COLUMNs (no table rebuild on SQLite): nullable, no constraint.
    for name in _LIMITS:
        op.add_column("organizations", sa.Column(name, sa.Integer(), nullable=True))
    op.add_column("deliveries", sa.Column("heldReason", sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+): rebuilding ``organizations`` on SQLite would
    # cascade into every table that references it.
    op.drop_column("deliveries", "heldReason")
    for name in _LIMITS:
        op.drop_column("organizations", name)
    op.drop_index(op.f("ix_usage_month"), table_name="usage")
    op.drop_table("usage")
