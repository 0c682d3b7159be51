"""healthAlerts (what each organization was told about its broken sources, channels and
searches); organizations.alertChannels (where those alerts go)

Revision ID: 0012_health_alerts
Revises: 0011_audit
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_health_alerts"
down_revision: str | None = "0011_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=False,
    )


def upgrade() -> None:
    op.add_column("organizations", sa.Column("alertChannels", _JSON, nullable=True))
    op.create_table(
        "healthAlerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("subjectKind", sa.String(length=16), nullable=False),
        sa.Column("subjectId", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", _JSON, nullable=True),
        sa.Column("changedAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notifiedState", sa.String(length=16), nullable=True),
        sa.Column("sendingState", sa.String(length=16), nullable=True),
        sa.Column("sendingUntil", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastAlertAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastError", sa.Text(), nullable=True),
        _timestamp("createdAt"),
        _timestamp("updatedAt"),
        sa.CheckConstraint(
            "\"subjectKind\" IN ('source', 'channel', 'news')",
            name=op.f("ck_healthAlerts_subjectKind_valid"),
        ),
        sa.CheckConstraint(
            "\"state\" IN ('ok', 'failing')", name=op.f("ck_healthAlerts_state_valid")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_healthAlerts_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_healthAlerts")),
        sa.UniqueConstraint(
            "organizationId",
            "subjectKind",
            "subjectId",
            name=op.f("uq_healthAlerts_organizationId_subjectKind_subjectId"),
        ),
    )
    op.create_index(
        op.f("ix_healthAlerts_organizationId"), "healthAlerts", ["organizationId"], unique=False
    )
    op.create_index(op.f("ix_healthAlerts_state"), "healthAlerts", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_healthAlerts_state"), table_name="healthAlerts")
    op.drop_index(op.f("ix_healthAlerts_organizationId"), table_name="healthAlerts")
    op.drop_table("healthAlerts")
    # A plain DROP COLUMN (SQLite 3.35+): rebuilding ``organizations`` on SQLite would
    # cascade into every table that references it.
    op.drop_column("organizations", "alertChannels")
