"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 07:18:32.940415
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operatorKeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("start", sa.String(length=32), nullable=True),
        sa.Column("prefix", sa.String(length=32), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("lastRequest", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operatorKeys")),
        sa.UniqueConstraint("key", name=op.f("uq_operatorKeys_key")),
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("logo", sa.Text(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column("isActive", sa.Boolean(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(length=512), nullable=True),
        sa.Column("lastModified", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failureCount", sa.Integer(), nullable=False),
        sa.Column("lastStatusCode", sa.Integer(), nullable=True),
        sa.Column(
            "lastError",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("lastFetchedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastSuccessAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nextFetchAt", sa.DateTime(timezone=True), nullable=True),
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
            "\"status\" IN ('new', 'ok', 'failing')", name=op.f("ck_sources_status_valid")
        ),
        sa.CheckConstraint(
            "\"type\" IN ('feed', 'google_news', 'bing_news', 'hackernews', 'reddit', 'gdelt')",
            name=op.f("ck_sources_type_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("url", name=op.f("uq_sources_url")),
    )
    op.create_index(op.f("ix_sources_nextFetchAt"), "sources", ["nextFetchAt"], unique=False)
    op.create_index(
        op.f("ix_sources_status_nextFetchAt"), "sources", ["status", "nextFetchAt"], unique=False
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("emailVerified", sa.Boolean(), nullable=False),
        sa.Column("image", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("banReason", sa.Text(), nullable=True),
        sa.Column("banExpires", sa.DateTime(timezone=True), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
    )
    op.create_index(
        op.f("ix_verifications_identifier"), "verifications", ["identifier"], unique=False
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("userId", sa.String(length=32), nullable=False),
        sa.Column("accountId", sa.String(length=255), nullable=False),
        sa.Column("providerId", sa.String(length=255), nullable=False),
        sa.Column("accessToken", sa.Text(), nullable=True),
        sa.Column("refreshToken", sa.Text(), nullable=True),
        sa.Column("idToken", sa.Text(), nullable=True),
        sa.Column("tokenExpiresAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
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
            ["userId"], ["users.id"], name=op.f("fk_accounts_userId_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_index(op.f("ix_accounts_userId"), "accounts", ["userId"], unique=False)
    op.create_table(
        "apikeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("start", sa.String(length=32), nullable=True),
        sa.Column("prefix", sa.String(length=32), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("refillInterval", sa.Integer(), nullable=True),
        sa.Column("refillAmount", sa.Integer(), nullable=True),
        sa.Column("lastRefillAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rateLimitEnabled", sa.Boolean(), nullable=False),
        sa.Column("rateLimitTimeWindow", sa.Integer(), nullable=True),
        sa.Column("rateLimitMax", sa.Integer(), nullable=True),
        sa.Column("requestCount", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("permissions", sa.Text(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column("lastRequest", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=True),
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
            '"remaining" IS NULL OR "remaining" >= 0',
            name=op.f("ck_apikeys_remaining_not_negative"),
        ),
        sa.CheckConstraint(
            '"requestCount" >= 0', name=op.f("ck_apikeys_request_count_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_apikeys_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apikeys")),
        sa.UniqueConstraint("key", name=op.f("uq_apikeys_key")),
    )
    op.create_index(op.f("ix_apikeys_organizationId"), "apikeys", ["organizationId"], unique=False)
    op.create_table(
        "auditLogs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=True),
        sa.Column("actorType", sa.String(length=16), nullable=False),
        sa.Column("actorId", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("targetType", sa.String(length=64), nullable=True),
        sa.Column("targetId", sa.String(length=64), nullable=True),
        sa.Column("requestId", sa.String(length=64), nullable=True),
        sa.Column("ipAddress", sa.String(length=64), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
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
            "\"actorType\" IN ('apikey', 'operator', 'user', 'system')",
            name=op.f("ck_auditLogs_actorType_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_auditLogs_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auditLogs")),
    )
    op.create_index(op.f("ix_auditLogs_action"), "auditLogs", ["action"], unique=False)
    op.create_index(op.f("ix_auditLogs_actorId"), "auditLogs", ["actorId"], unique=False)
    op.create_index(
        op.f("ix_auditLogs_organizationId"), "auditLogs", ["organizationId"], unique=False
    )
    op.create_index(op.f("ix_auditLogs_targetId"), "auditLogs", ["targetId"], unique=False)
    op.create_table(
        "channels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consecutiveFailures", sa.Integer(), nullable=False),
        sa.Column("lastError", sa.Text(), nullable=True),
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
            "\"status\" IN ('ok', 'failing', 'broken')", name=op.f("ck_channels_status_valid")
        ),
        sa.CheckConstraint(
            "\"type\" IN ('slack', 'email', 'webhook', 'apprise', 'file')",
            name=op.f("ck_channels_type_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_channels_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("organizationId", "id", name=op.f("uq_channels_organizationId_id")),
    )
    op.create_index(
        op.f("ix_channels_organizationId"), "channels", ["organizationId"], unique=False
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sourceId", sa.String(length=32), nullable=False),
        sa.Column("canonicalUrl", sa.String(length=2048), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("guid", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=512), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("publishedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contentHash", sa.String(length=64), nullable=False),
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
            ["sourceId"],
            ["sources.id"],
            name=op.f("fk_entries_sourceId_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint(
            "sourceId", "canonicalUrl", name=op.f("uq_entries_sourceId_canonicalUrl")
        ),
    )
    op.create_index(op.f("ix_entries_canonicalUrl"), "entries", ["canonicalUrl"], unique=False)
    op.create_index(op.f("ix_entries_contentHash"), "entries", ["contentHash"], unique=False)
    op.create_index(op.f("ix_entries_publishedAt"), "entries", ["publishedAt"], unique=False)
    op.create_index(op.f("ix_entries_sourceId"), "entries", ["sourceId"], unique=False)
    op.create_table(
        "members",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("userId", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
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
            "\"role\" IN ('owner', 'admin', 'member')", name=op.f("ck_members_role_valid")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_members_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["userId"], ["users.id"], name=op.f("fk_members_userId_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "organizationId", "userId", name=op.f("uq_members_organizationId_userId")
        ),
    )
    op.create_index(op.f("ix_members_organizationId"), "members", ["organizationId"], unique=False)
    op.create_index(op.f("ix_members_userId"), "members", ["userId"], unique=False)
    op.create_table(
        "news",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "searchQuery",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "relevanceSettings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "waitSettings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.Column("lastRun", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastSent", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nextRun", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_news_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news")),
        sa.UniqueConstraint("organizationId", "id", name=op.f("uq_news_organizationId_id")),
    )
    op.create_index(op.f("ix_news_organizationId"), "news", ["organizationId"], unique=False)
    op.create_table(
        "organizationRoles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("permission", sa.Text(), nullable=False),
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
            name=op.f("fk_organizationRoles_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizationRoles")),
        sa.UniqueConstraint(
            "organizationId", "role", name=op.f("uq_organizationRoles_organizationId_role")
        ),
    )
    op.create_index(
        op.f("ix_organizationRoles_organizationId"),
        "organizationRoles",
        ["organizationId"],
        unique=False,
    )
    op.create_index(op.f("ix_organizationRoles_role"), "organizationRoles", ["role"], unique=False)
    op.create_table(
        "passkeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("userId", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("publicKey", sa.Text(), nullable=False),
        sa.Column("credentialID", sa.Text(), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("deviceType", sa.String(length=64), nullable=False),
        sa.Column("backedUp", sa.Boolean(), nullable=False),
        sa.Column("transports", sa.String(length=255), nullable=True),
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
            ["userId"], ["users.id"], name=op.f("fk_passkeys_userId_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
    )
    op.create_index(op.f("ix_passkeys_credentialID"), "passkeys", ["credentialID"], unique=False)
    op.create_index(op.f("ix_passkeys_userId"), "passkeys", ["userId"], unique=False)
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("userId", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("expiresAt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ipAddress", sa.Text(), nullable=True),
        sa.Column("userAgent", sa.Text(), nullable=True),
        sa.Column("impersonatedBy", sa.Text(), nullable=True),
        sa.Column("activeOrganizationId", sa.Text(), nullable=True),
        sa.Column("activeTeamId", sa.Text(), nullable=True),
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
            ["userId"], ["users.id"], name=op.f("fk_sessions_userId_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token", name=op.f("uq_sessions_token")),
    )
    op.create_index(op.f("ix_sessions_userId"), "sessions", ["userId"], unique=False)
    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
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
            name=op.f("fk_teams_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("organizationId", "name", name=op.f("uq_teams_organizationId_name")),
    )
    op.create_index(op.f("ix_teams_organizationId"), "teams", ["organizationId"], unique=False)
    op.create_table(
        "digests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("digestKey", sa.String(length=128), nullable=False),
        sa.Column("storyCount", sa.Integer(), nullable=False),
        sa.Column("periodStart", sa.DateTime(timezone=True), nullable=True),
        sa.Column("periodEnd", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_digests_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_digests_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("newsId", "digestKey", name=op.f("uq_digests_newsId_digestKey")),
        sa.UniqueConstraint("organizationId", "id", name=op.f("uq_digests_organizationId_id")),
    )
    op.create_index(op.f("ix_digests_newsId"), "digests", ["newsId"], unique=False)
    op.create_index(op.f("ix_digests_organizationId"), "digests", ["organizationId"], unique=False)
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("inviterId", sa.String(length=32), nullable=False),
        sa.Column("teamId", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tokenHash", sa.String(length=128), nullable=True),
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
        sa.CheckConstraint(
            "\"role\" IN ('owner', 'admin', 'member')", name=op.f("ck_invitations_role_valid")
        ),
        sa.CheckConstraint(
            "\"status\" IN ('pending', 'accepted', 'rejected', 'canceled', 'expired')",
            name=op.f("ck_invitations_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["inviterId"],
            ["users.id"],
            name=op.f("fk_invitations_inviterId_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_invitations_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["teamId"], ["teams.id"], name=op.f("fk_invitations_teamId_teams"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("tokenHash", name=op.f("uq_invitations_tokenHash")),
    )
    op.create_index(op.f("ix_invitations_email"), "invitations", ["email"], unique=False)
    op.create_index(op.f("ix_invitations_inviterId"), "invitations", ["inviterId"], unique=False)
    op.create_index(
        op.f("ix_invitations_organizationId"), "invitations", ["organizationId"], unique=False
    )
    op.create_index(op.f("ix_invitations_teamId"), "invitations", ["teamId"], unique=False)
    op.create_table(
        "newsChannels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("channelId", sa.String(), nullable=False),
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
            ["organizationId", "channelId"],
            ["channels.organizationId", "channels.id"],
            name=op.f("fk_newsChannels_organizationId_channelId_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_newsChannels_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_newsChannels_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsChannels")),
        sa.UniqueConstraint("newsId", "channelId", name=op.f("uq_newsChannels_newsId_channelId")),
    )
    op.create_index(op.f("ix_newsChannels_channelId"), "newsChannels", ["channelId"], unique=False)
    op.create_index(op.f("ix_newsChannels_newsId"), "newsChannels", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_newsChannels_organizationId"), "newsChannels", ["organizationId"], unique=False
    )
    op.create_table(
        "newsSources",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("sourceId", sa.String(length=32), nullable=False),
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
            name=op.f("fk_newsSources_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_newsSources_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sourceId"],
            ["sources.id"],
            name=op.f("fk_newsSources_sourceId_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsSources")),
        sa.UniqueConstraint("newsId", "sourceId", name=op.f("uq_newsSources_newsId_sourceId")),
    )
    op.create_index(op.f("ix_newsSources_newsId"), "newsSources", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_newsSources_organizationId"), "newsSources", ["organizationId"], unique=False
    )
    op.create_index(op.f("ix_newsSources_sourceId"), "newsSources", ["sourceId"], unique=False)
    op.create_table(
        "relevanceModels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("labelCount", sa.Integer(), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=True),
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
            name=op.f("fk_relevanceModels_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_relevanceModels_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relevanceModels")),
        sa.UniqueConstraint("newsId", "version", name=op.f("uq_relevanceModels_newsId_version")),
    )
    op.create_index(op.f("ix_relevanceModels_newsId"), "relevanceModels", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_relevanceModels_organizationId"),
        "relevanceModels",
        ["organizationId"],
        unique=False,
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("cronExpr", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("catchUp", sa.String(length=8), nullable=False),
        sa.Column("isActive", sa.Boolean(), nullable=False),
        sa.Column("nextRun", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastSuccess", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastFailure", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "errorDetails",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
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
            "\"catchUp\" IN ('once', 'all', 'skip')", name=op.f("ck_schedules_catchUp_valid")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_schedules_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_schedules_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(
        op.f("ix_schedules_isActive_nextRun"), "schedules", ["isActive", "nextRun"], unique=False
    )
    op.create_index(op.f("ix_schedules_newsId"), "schedules", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_schedules_organizationId"), "schedules", ["organizationId"], unique=False
    )
    op.create_table(
        "stories",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("entryId", sa.String(length=32), nullable=True),
        sa.Column("clusterId", sa.String(length=32), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("snippet", sa.Text(), nullable=True),
        sa.Column("sourceName", sa.String(length=255), nullable=True),
        sa.Column("publishedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("relevanceScore", sa.Double(), nullable=False),
        sa.Column(
            "explanation",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("isFiltered", sa.Boolean(), nullable=False),
        sa.Column("wasDelivered", sa.Boolean(), nullable=False),
        sa.Column("foundAt", sa.DateTime(timezone=True), nullable=False),
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
            ["clusterId"],
            ["stories.id"],
            name=op.f("fk_stories_clusterId_stories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entryId"],
            ["entries.id"],
            name=op.f("fk_stories_entryId_entries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_stories_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_stories_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
        sa.UniqueConstraint("newsId", "url", name=op.f("uq_stories_newsId_url")),
        sa.UniqueConstraint("organizationId", "id", name=op.f("uq_stories_organizationId_id")),
    )
    op.create_index(op.f("ix_stories_clusterId"), "stories", ["clusterId"], unique=False)
    op.create_index(op.f("ix_stories_entryId"), "stories", ["entryId"], unique=False)
    op.create_index(op.f("ix_stories_foundAt"), "stories", ["foundAt"], unique=False)
    op.create_index(op.f("ix_stories_newsId"), "stories", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_stories_newsId_foundAt"), "stories", ["newsId", "foundAt"], unique=False
    )
    op.create_index(op.f("ix_stories_organizationId"), "stories", ["organizationId"], unique=False)
    op.create_table(
        "teamMembers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("teamId", sa.String(length=32), nullable=False),
        sa.Column("userId", sa.String(length=32), nullable=False),
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
            ["teamId"], ["teams.id"], name=op.f("fk_teamMembers_teamId_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["userId"], ["users.id"], name=op.f("fk_teamMembers_userId_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teamMembers")),
        sa.UniqueConstraint("teamId", "userId", name=op.f("uq_teamMembers_teamId_userId")),
    )
    op.create_index(op.f("ix_teamMembers_teamId"), "teamMembers", ["teamId"], unique=False)
    op.create_index(op.f("ix_teamMembers_userId"), "teamMembers", ["userId"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("channelId", sa.String(), nullable=False),
        sa.Column("digestId", sa.String(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("nextAttemptAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leaseUntil", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lastError", sa.Text(), nullable=True),
        sa.Column("lastStatusCode", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("sentAt", sa.DateTime(timezone=True), nullable=True),
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
            "\"state\" IN ('pending', 'sending', 'sent', 'failed', 'unknown')",
            name=op.f("ck_deliveries_state_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "channelId"],
            ["channels.organizationId", "channels.id"],
            name=op.f("fk_deliveries_organizationId_channelId_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "digestId"],
            ["digests.organizationId", "digests.id"],
            name=op.f("fk_deliveries_organizationId_digestId_digests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_deliveries_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("channelId", "digestId", name=op.f("uq_deliveries_channelId_digestId")),
    )
    op.create_index(op.f("ix_deliveries_channelId"), "deliveries", ["channelId"], unique=False)
    op.create_index(op.f("ix_deliveries_digestId"), "deliveries", ["digestId"], unique=False)
    op.create_index(
        op.f("ix_deliveries_organizationId"), "deliveries", ["organizationId"], unique=False
    )
    op.create_index(
        op.f("ix_deliveries_state_nextAttemptAt"),
        "deliveries",
        ["state", "nextAttemptAt"],
        unique=False,
    )
    op.create_table(
        "digestStories",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digestId", sa.String(length=32), nullable=False),
        sa.Column("storyId", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
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
            ["digestId"],
            ["digests.id"],
            name=op.f("fk_digestStories_digestId_digests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["storyId"],
            ["stories.id"],
            name=op.f("fk_digestStories_storyId_stories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digestStories")),
        sa.UniqueConstraint("digestId", "storyId", name=op.f("uq_digestStories_digestId_storyId")),
    )
    op.create_index(op.f("ix_digestStories_digestId"), "digestStories", ["digestId"], unique=False)
    op.create_index(op.f("ix_digestStories_storyId"), "digestStories", ["storyId"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("scheduleId", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("scheduledFor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("leaseUntil", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueuedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("startedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finishedAt", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "stats",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
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
            "\"state\" IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_runs_state_valid"),
        ),
        sa.CheckConstraint(
            "\"trigger\" IN ('schedule', 'manual', 'catchup')", name=op.f("ck_runs_trigger_valid")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_runs_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_runs_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scheduleId"],
            ["schedules.id"],
            name=op.f("fk_runs_scheduleId_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint(
            "scheduleId", "scheduledFor", name=op.f("uq_runs_scheduleId_scheduledFor")
        ),
    )
    op.create_index(op.f("ix_runs_newsId"), "runs", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_runs_newsId_scheduledFor"), "runs", ["newsId", "scheduledFor"], unique=False
    )
    op.create_index(op.f("ix_runs_organizationId"), "runs", ["organizationId"], unique=False)
    op.create_index(op.f("ix_runs_scheduleId"), "runs", ["scheduleId"], unique=False)
    op.create_index(op.f("ix_runs_state_enqueuedAt"), "runs", ["state", "enqueuedAt"], unique=False)
    op.create_index(
        "uq_runs_newsId_queued_manual",
        "runs",
        ["newsId"],
        unique=True,
        sqlite_where=sa.text("state = 'queued' AND \"trigger\" = 'manual'"),
        postgresql_where=sa.text("state = 'queued' AND \"trigger\" = 'manual'"),
    )
    op.create_table(
        "storyFeedback",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organizationId", sa.String(length=32), nullable=False),
        sa.Column("newsId", sa.String(), nullable=False),
        sa.Column("storyId", sa.String(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("actorId", sa.String(length=64), nullable=True),
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
            "\"label\" IN ('relevant', 'not_relevant')", name=op.f("ck_storyFeedback_label_valid")
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "newsId"],
            ["news.organizationId", "news.id"],
            name=op.f("fk_storyFeedback_organizationId_newsId_news"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId", "storyId"],
            ["stories.organizationId", "stories.id"],
            name=op.f("fk_storyFeedback_organizationId_storyId_stories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organizationId"],
            ["organizations.id"],
            name=op.f("fk_storyFeedback_organizationId_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storyFeedback")),
        sa.UniqueConstraint("storyId", name=op.f("uq_storyFeedback_storyId")),
    )
    op.create_index(op.f("ix_storyFeedback_newsId"), "storyFeedback", ["newsId"], unique=False)
    op.create_index(
        op.f("ix_storyFeedback_organizationId"), "storyFeedback", ["organizationId"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_storyFeedback_organizationId"), table_name="storyFeedback")
    op.drop_index(op.f("ix_storyFeedback_newsId"), table_name="storyFeedback")
    op.drop_table("storyFeedback")
    op.drop_index(
        "uq_runs_newsId_queued_manual",
        table_name="runs",
        sqlite_where=sa.text("state = 'queued' AND \"trigger\" = 'manual'"),
        postgresql_where=sa.text("state = 'queued' AND \"trigger\" = 'manual'"),
    )
    op.drop_index(op.f("ix_runs_state_enqueuedAt"), table_name="runs")
    op.drop_index(op.f("ix_runs_scheduleId"), table_name="runs")
    op.drop_index(op.f("ix_runs_organizationId"), table_name="runs")
    op.drop_index(op.f("ix_runs_newsId_scheduledFor"), table_name="runs")
    op.drop_index(op.f("ix_runs_newsId"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_digestStories_storyId"), table_name="digestStories")
    op.drop_index(op.f("ix_digestStories_digestId"), table_name="digestStories")
    op.drop_table("digestStories")
    op.drop_index(op.f("ix_deliveries_state_nextAttemptAt"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_organizationId"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_digestId"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_channelId"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_teamMembers_userId"), table_name="teamMembers")
    op.drop_index(op.f("ix_teamMembers_teamId"), table_name="teamMembers")
    op.drop_table("teamMembers")
    op.drop_index(op.f("ix_stories_organizationId"), table_name="stories")
    op.drop_index(op.f("ix_stories_newsId_foundAt"), table_name="stories")
    op.drop_index(op.f("ix_stories_newsId"), table_name="stories")
    op.drop_index(op.f("ix_stories_foundAt"), table_name="stories")
    op.drop_index(op.f("ix_stories_entryId"), table_name="stories")
    op.drop_index(op.f("ix_stories_clusterId"), table_name="stories")
    op.drop_table("stories")
    op.drop_index(op.f("ix_schedules_organizationId"), table_name="schedules")
    op.drop_index(op.f("ix_schedules_newsId"), table_name="schedules")
    op.drop_index(op.f("ix_schedules_isActive_nextRun"), table_name="schedules")
    op.drop_table("schedules")
    op.drop_index(op.f("ix_relevanceModels_organizationId"), table_name="relevanceModels")
    op.drop_index(op.f("ix_relevanceModels_newsId"), table_name="relevanceModels")
    op.drop_table("relevanceModels")
    op.drop_index(op.f("ix_newsSources_sourceId"), table_name="newsSources")
    op.drop_index(op.f("ix_newsSources_organizationId"), table_name="newsSources")
    op.drop_index(op.f("ix_newsSources_newsId"), table_name="newsSources")
    op.drop_table("newsSources")
    op.drop_index(op.f("ix_newsChannels_organizationId"), table_name="newsChannels")
    op.drop_index(op.f("ix_newsChannels_newsId"), table_name="newsChannels")
    op.drop_index(op.f("ix_newsChannels_channelId"), table_name="newsChannels")
    op.drop_table("newsChannels")
    op.drop_index(op.f("ix_invitations_teamId"), table_name="invitations")
    op.drop_index(op.f("ix_invitations_organizationId"), table_name="invitations")
    op.drop_index(op.f("ix_invitations_inviterId"), table_name="invitations")
    op.drop_index(op.f("ix_invitations_email"), table_name="invitations")
    op.drop_table("invitations")
    op.drop_index(op.f("ix_digests_organizationId"), table_name="digests")
    op.drop_index(op.f("ix_digests_newsId"), table_name="digests")
    op.drop_table("digests")
    op.drop_index(op.f("ix_teams_organizationId"), table_name="teams")
    op.drop_table("teams")
    op.drop_index(op.f("ix_sessions_userId"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_index(op.f("ix_passkeys_userId"), table_name="passkeys")
    op.drop_index(op.f("ix_passkeys_credentialID"), table_name="passkeys")
    op.drop_table("passkeys")
    op.drop_index(op.f("ix_organizationRoles_role"), table_name="organizationRoles")
    op.drop_index(op.f("ix_organizationRoles_organizationId"), table_name="organizationRoles")
    op.drop_table("organizationRoles")
    op.drop_index(op.f("ix_news_organizationId"), table_name="news")
    op.drop_table("news")
    op.drop_index(op.f("ix_members_userId"), table_name="members")
    op.drop_index(op.f("ix_members_organizationId"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_entries_sourceId"), table_name="entries")
    op.drop_index(op.f("ix_entries_publishedAt"), table_name="entries")
    op.drop_index(op.f("ix_entries_contentHash"), table_name="entries")
    op.drop_index(op.f("ix_entries_canonicalUrl"), table_name="entries")
    op.drop_table("entries")
    op.drop_index(op.f("ix_channels_organizationId"), table_name="channels")
    op.drop_table("channels")
    op.drop_index(op.f("ix_auditLogs_targetId"), table_name="auditLogs")
    op.drop_index(op.f("ix_auditLogs_organizationId"), table_name="auditLogs")
    op.drop_index(op.f("ix_auditLogs_actorId"), table_name="auditLogs")
    op.drop_index(op.f("ix_auditLogs_action"), table_name="auditLogs")
    op.drop_table("auditLogs")
    op.drop_index(op.f("ix_apikeys_organizationId"), table_name="apikeys")
    op.drop_table("apikeys")
    op.drop_index(op.f("ix_accounts_userId"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_verifications_identifier"), table_name="verifications")
    op.drop_table("verifications")
    op.drop_table("users")
    op.drop_index(op.f("ix_sources_status_nextFetchAt"), table_name="sources")
    op.drop_index(op.f("ix_sources_nextFetchAt"), table_name="sources")
    op.drop_table("sources")
    op.drop_table("organizations")
    op.drop_table("operatorKeys")
