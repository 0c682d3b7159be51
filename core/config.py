"""The one settings object: ``NEWSMON_*`` environment variables and an optional ``.env``.

With nothing set, newsmon runs *embedded*: a SQLite file in ``NEWSMON_DATA_DIR`` and an
in-process broker, one process doing everything. Setting ``NEWSMON_BROKER_URL`` (Redis)
switches to *production* mode, which needs ``NEWSMON_DATABASE_URL`` to be PostgreSQL so
that any number of web, scheduler and worker processes can share it.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError

#: Prefix of every environment variable newsmon reads.
ENV_PREFIX = "NEWSMON_"

#: Database drivers newsmon supports, by SQLAlchemy backend name.
SUPPORTED_DATABASES = ("sqlite", "postgresql")

Mode = Literal["embedded", "production"]


class Settings(BaseSettings):
    """Validated process settings; build with :func:`load_settings` for one-line errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    #: Where the embedded SQLite database and generated key files live.
    data_dir: Path = Path("data")
    #: SQLAlchemy URL; empty means ``sqlite:///<data_dir>/newsmon.db``.
    database_url: str = ""
    #: Redis URL for the dramatiq broker; empty means the in-process broker (embedded).
    broker_url: str = ""
    #: Comma-separated base64url AES-256 keys, newest first (channel secrets at rest).
    encryption_keys: str = ""
    #: Comma-separated hosts, IPs or CIDR ranges outbound requests may reach although
    #: they are private (e.g. an intranet feed server); everything else private is refused.
    fetch_allowlist: str = ""
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    #: Seconds between scheduler ticks.
    scheduler_tick_seconds: float = Field(default=5.0, gt=0, le=3600)
    #: Worker threads per worker process.
    worker_threads: int = Field(default=4, ge=1, le=256)
    #: Seconds a worker's claim holds a run unless renewed; a live worker renews it every
    #: third of it, so past it the run's worker is dead and the sweeper hands the run to
    #: another worker.
    run_lease_seconds: float = Field(default=30.0, gt=0, le=86_400)
    #: Seconds a run's actor may take in all (a dramatiq time limit).
    run_time_limit_seconds: float = Field(default=600.0, gt=0, le=86_400)
    #: Seconds a worker's claim holds a delivery unless renewed (as for runs); past it,
    #: the sweeper offers the delivery again (webhooks resend, others turn unknown).
    delivery_lease_seconds: float = Field(default=30.0, gt=0, le=86_400)
    #: Seconds a committed run may wait unenqueued before the sweeper calls it an orphan
    #: of a crashed scheduler.
    orphan_grace_seconds: float = Field(default=30.0, gt=0, le=86_400)
    #: Seconds a run may stay queued after its enqueue before the sweeper re-enqueues it
    #: (the broker lost it: Redis here keeps nothing on disk).
    requeue_after_seconds: float = Field(default=900.0, gt=0, le=86_400)
    #: ``User-Agent`` of every outbound fetch: names the bot and where to read about it.
    fetch_user_agent: str = Field(
        default="newsmon/0.1 (+https://newsmon.invalid/bot)", min_length=1, max_length=200
    )
    #: Fetches of one host in flight at once, across every worker (per process embedded).
    fetch_host_concurrency: int = Field(default=2, ge=1, le=64)
    #: Seconds between the starts of two fetches of one host, across every worker.
    fetch_host_interval_seconds: float = Field(default=1.0, ge=0, le=60)
    #: Shortest wait between two fetches of a source no urgent search follows.
    source_min_interval_seconds: int = Field(default=300, ge=10, le=86_400)
    #: Shortest wait at all: a source followed by a search firing every minute.
    source_urgent_interval_seconds: int = Field(default=60, ge=10, le=86_400)
    #: Longest wait between two fetches of a source, however quiet it is.
    source_max_interval_seconds: int = Field(default=3600, ge=60, le=86_400)
    #: Folder below which ``file`` channels write, each organization into its own
    #: subfolder; unset: ``<data_dir>/digests`` in embedded mode, file channels off in
    #: production mode.
    file_channel_root: Path | None = None
    #: Public base URL of the web process as browsers reach it (``https://newsmon.example``).
    #: Behind a TLS proxy the app sees http, so this decides the operator page's own
    #: origin (form posts from any other are refused) and its cookie's ``Secure`` flag.
    public_url: str = ""
    #: Signing secret of the Slack app whose Interactivity Request URL is
    #: ``{public_url}/slack/interactions``; with ``public_url`` set, Slack digests carry
    #: feedback buttons instead of links. A ``SecretStr``: masked in any display.
    slack_signing_secret: SecretStr = SecretStr("")
    #: JSON object overriding news-search providers' base URLs, by source type
    #: (``google_news``, ``bing_news``, ``hackernews``, ``reddit``, ``gdelt``).
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    #: Days an organization's stories are kept (0: forever); labelled ones always are.
    retain_stories_days: int = Field(default=365, ge=0, le=36_500)
    #: Days shared feed entries (and sources no search follows) are kept (0: forever).
    retain_entries_days: int = Field(default=30, ge=0, le=36_500)
    #: Days finished runs are kept (0: forever).
    retain_runs_days: int = Field(default=30, ge=0, le=36_500)
    #: Days digests and their delivery records are kept (0: forever).
    retain_deliveries_days: int = Field(default=90, ge=0, le=36_500)
    #: Days audit log entries are kept (0: forever).
    retain_audit_days: int = Field(default=365, ge=0, le=36_500)
    #: Minutes between two retention passes of the scheduler (0: never; ``newsmon db prune``).
    prune_interval_minutes: float = Field(default=60.0, ge=0, le=10_080)
    #: "Run now" requests per minute and organization, across every web process.
    run_now_per_minute: int = Field(default=5, ge=1, le=10_000)
    #: Channel test sends per minute and organization, across every web process.
    channel_test_per_minute: int = Field(default=5, ge=1, le=10_000)
    #: Seconds between the scheduler's health checks, which compare sources, channels and
    #: searches with what each organization was last told (0: no health alerts).
    health_check_interval_seconds: float = Field(default=60.0, ge=0, le=86_400)
    #: Failed fetches in a row after which a source a search follows is alerted as failing.
    health_source_failures: int = Field(default=5, ge=1, le=1000)
    #: Failed runs in a row after which a search is alerted as failing.
    health_run_failures: int = Field(default=3, ge=1, le=1000)
    #: Health alert messages per organization and hour (each may tell several changes);
    #: past it, changes wait for the next hour and go out together.
    health_alerts_per_hour: int = Field(default=6, ge=1, le=1000)
    #: Seconds between a web process's writes of the API requests it counted into the
    #: organizations' usage (a batched upsert; see core.usage.meter).
    usage_flush_seconds: float = Field(default=10, gt=0, le=3600)
    #: The operator's mail relay for system mail (invitations), e.g.
    #: ``smtp://user:pass@mail.example.com:587`` (``?security=starttls|tls|none``);
    #: empty: no system mail, so invitations cannot be sent.
    smtp_url: str = ""
    #: Sender of system mail, e.g. ``newsmon <noreply@example.com>``.
    mail_from: str = ""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("file_channel_root", mode="before")
    @classmethod
    def _empty_root_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (expected postgresql://... or sqlite:///...)"
            ) from None
        if url.get_backend_name() not in SUPPORTED_DATABASES:
            raise ValueError(f"unsupported database {url.get_backend_name()!r} (use PostgreSQL)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a Redis URL (redis://host:6379/0)")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected the web process's base URL (https://newsmon.example)")
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
            raise ValueError("only scheme, host and port (newsmon is served at the root)")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise ValueError("invalid port") from None
        return value.rstrip("/")

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: str) -> str:
        if value:
            from core.secrets import parse_keys  # noqa: PLC0415  (cryptography on demand)

            parse_keys(value)  # raises ConfigError naming NEWSMON_ENCRYPTION_KEYS
        return value

    @field_validator("provider_base_urls")
    @classmethod
    def _check_provider_base_urls(cls, value: dict[str, str]) -> dict[str, str]:
        from core.news.providers import check_base_urls  # noqa: PLC0415  (no import cycle)

        return check_base_urls(value)

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str) -> str:
        if value:
            from core.system_mail import parse_smtp_url  # noqa: PLC0415  (no import cycle)

            parse_smtp_url(value)  # raises ConfigError naming NEWSMON_SMTP_URL
        return value

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        if value:
            from core.system_mail import parse_sender  # noqa: PLC0415  (no import cycle)

            parse_sender(value)  # raises ConfigError naming NEWSMON_MAIL_FROM
        return value

    @model_validator(mode="after")
    def _check_mode(self) -> Settings:
        if bool(self.smtp_url) != bool(self.mail_from):
            raise ConfigError(
                "NEWSMON_MAIL_FROM" if self.smtp_url else "NEWSMON_SMTP_URL",
                "NEWSMON_SMTP_URL and NEWSMON_MAIL_FROM go together (system mail needs both)",
            )
        if self.broker_url and self.database_backend != "postgresql":
            # Not a ValueError: pydantic would wrap it; this one names its setting itself.
            raise ConfigError(
                "NEWSMON_DATABASE_URL",
                "production mode (NEWSMON_BROKER_URL set) needs a PostgreSQL URL",
            )
        if self.broker_url and not self.encryption_keys:
            # Channel secrets are sealed with these keys; embedded mode generates a key
            # file instead (core.delivery.channels.load_keyring), production never guesses.
            raise ConfigError(
                "NEWSMON_ENCRYPTION_KEYS",
                "production mode (NEWSMON_BROKER_URL set) needs at least one key "
                "(create one with `newsmon secrets generate-key`)",
            )
        return self

    @model_validator(mode="after")
    def _check_source_intervals(self) -> Settings:
        urgent, least, most = (
            self.source_urgent_interval_seconds,
            self.source_min_interval_seconds,
            self.source_max_interval_seconds,
        )
        if not urgent <= least <= most:
            raise ConfigError(
                "NEWSMON_SOURCE_MIN_INTERVAL_SECONDS",
                f"need urgent ({urgent}) <= min ({least}) <= max ({most}) interval",
            )
        return self

    @property
    def fetch_allowlist_entries(self) -> list[str]:
        return [entry.strip() for entry in self.fetch_allowlist.split(",") if entry.strip()]

    @property
    def file_channel_folder(self) -> Path | None:
        """Where ``file`` channels write; None when they are off (production, no root)."""
        if self.file_channel_root is not None:
            return self.file_channel_root
        return self.data_dir / "digests" if self.mode == "embedded" else None

    @property
    def mode(self) -> Mode:
        return "production" if self.broker_url else "embedded"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL to connect to, with the embedded default filled in."""
        if self.database_url:
            url = make_url(self.database_url)
            if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
                url = url.set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{(self.data_dir / 'newsmon.db').resolve()}"

    @property
    def database_backend(self) -> str:
        return make_url(self.sqlalchemy_url).get_backend_name()


def _unknown_env_settings(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    problems = []
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX) and key not in known and not key.startswith("NEWSMON_TEST_"):
            guess = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            problems.append(f"{key}: unknown setting{hint}")
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; raise :class:`ConfigError` naming the first bad one."""
    unknown = _unknown_env_settings(dict(os.environ))
    if unknown:
        setting, _, problem = unknown[0].partition(": ")
        raise ConfigError(setting, problem)
    try:
        return Settings(**overrides)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        setting = ENV_PREFIX + loc[0].upper() if loc else "settings"
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(setting, message) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, validated once."""
    return load_settings()
