"""Schema migrations (Alembic) driven from code, for ``newsmon db`` and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import core.db.models  # noqa: F401  (registers every table)
from core.db.base import Base
from core.db.story_index import is_story_index

#: The Alembic scripts live in the top-level ``migrations`` package.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade_if_needed(engine: Engine) -> bool:
    """Upgrade to head unless already there (cheap check); returns whether it migrated."""
    if current_revision(engine) == head_revision(engine):
        return False
    upgrade(engine)
    return True


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_drift(engine: Engine) -> list[object]:
    """Differences between the live schema and the models (empty = in step); the
    full-text index of stories is made by its migration, not the models."""
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": lambda name, *_: not is_story_index(name)}
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, Base.metadata))
