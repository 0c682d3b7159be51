"""What every ``newsmon`` command shares: settings, the database, signals, test hooks."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from sqlalchemy import Engine

from core.config import Settings, load_settings
from core.db import migrate
from core.db.session import check_connection, make_engine
from core.errors import ConfigError
from core.logs import setup_logging

log = logging.getLogger("newsmon")

# Test hooks: environment variables under NEWSMON_TEST_ are not settings (core/config.py
# ignores them) and are read here only, for the end-to-end tests of real processes.
#: ``module:function`` run step a worker uses instead of the default.
TEST_RUN_STEP_ENV = "NEWSMON_TEST_RUN_STEP"
#: ``1``: a scheduler SIGKILLs itself between a commit and its enqueue (fault test).
TEST_CRASH_AFTER_COMMIT_ENV = "NEWSMON_TEST_CRASH_AFTER_COMMIT"
#: Redis key namespace of the broker, so tests sharing one Redis stay apart.
TEST_BROKER_NAMESPACE_ENV = "NEWSMON_TEST_BROKER_NAMESPACE"
#: Milliseconds of the broker's heartbeat timeout, with maintenance on every command
#: (the test of dramatiq's own redelivery of a killed worker's messages).
TEST_BROKER_HEARTBEAT_ENV = "NEWSMON_TEST_BROKER_HEARTBEAT_MS"


def load() -> Settings:
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    return settings


def engine_for(settings: Settings, **options: Any) -> Engine:
    engine = make_engine(settings.sqlalchemy_url, **options)
    check_connection(engine)
    return engine


def migrated_engine(settings: Settings, **options: Any) -> Engine:
    """The database (``options``: the engine's), migrated first in embedded mode
    (production migrates in ``release``)."""
    engine = engine_for(settings, **options)
    if settings.mode == "embedded":
        migrate.upgrade_if_needed(engine)
    elif migrate.current_revision(engine) is None:
        raise ConfigError(
            "NEWSMON_DATABASE_URL", "database has no schema: run `newsmon db upgrade`"
        )
    return engine


def stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
