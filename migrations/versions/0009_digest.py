"""digest link uses: one-click feedback and unsubscribe links work once

Revision ID: 0009_digest
Revises: 0008_source_clock
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_digest"
down_revision: str | None = "0008_source_clock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digestLinkUses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tokenHash", sa.String(length=64), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=False),
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
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_digestLinkUses_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digestLinkUses")),
        sa.UniqueConstraint("tokenHash", name=op.f("uq_digestLinkUses_tokenHash")),
    )
    op.create_index(op.f("ix_digestLinkUses_organizationId"), "digestLinkUses", ["organizationId"])
    op.create_index(op.f("ix_digestLinkUses_expiresAt"), "digestLinkUses", ["expiresAt"])


def downgrade() -> None:
    op.drop_index(op.f("ix_digestLinkUses_expiresAt"), table_name="digestLinkUses")
    op.drop_index(op.f("ix_digestLinkUses_organizationId"), table_name="digestLinkUses")
    op.drop_table("digestLinkUses")
