"""Settings: embedded defaults, production switch, one-line errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from core.config import load_settings
from core.errors import ConfigError


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.mode == "embedded"
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}"
    assert settings.broker_url == ""


def test_broker_url_with_postgresql_is_production(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NEWSMON_DATABASE_URL", "postgresql://postgres@db:5432/newsmon")
    monkeypatch.setenv("NEWSMON_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("NEWSMON_ENCRYPTION_KEYS", "A" * 43)
    settings = load_settings()
    assert settings.mode == "production"
    assert make_url(settings.sqlalchemy_url).get_dialect().driver == "psycopg"


def test_production_mode_without_encryption_key_refuses_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("NEWSMON_DATABASE_URL", "postgresql://postgres@db:5432/newsmon")
    monkeypatch.setenv("NEWSMON_BROKER_URL", "redis://redis:6379/0")
    with pytest.raises(ConfigError, match=r"^NEWSMON_ENCRYPTION_KEYS: production mode"):
        load_settings()


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("NEWSMON_WEB_PORT=9123\n")
    assert load_settings().web_port == 9123


@pytest.mark.parametrize(
    ("env", "setting", "words"),
    [
        ({"NEWSMON_DATABASE_URL": "mysql://x/y"}, "NEWSMON_DATABASE_URL", "unsupported"),
        ({"NEWSMON_DATABASE_URL": "::not a url::"}, "NEWSMON_DATABASE_URL", "not a database URL"),
        ({"NEWSMON_BROKER_URL": "amqp://x"}, "NEWSMON_BROKER_URL", "Redis URL"),
        ({"NEWSMON_BROKER_URL": "redis://x"}, "NEWSMON_DATABASE_URL", "needs a PostgreSQL"),
        ({"NEWSMON_LOG_LEVEL": "LOUD"}, "NEWSMON_LOG_LEVEL", "'INFO'"),
        ({"NEWSMON_WEB_PORT": "70000"}, "NEWSMON_WEB_PORT", "less than or equal"),
        ({"NEWSMON_WORKER_THREADS": "many"}, "NEWSMON_WORKER_THREADS", "integer"),
        ({"NEWSMON_DATABSE_URL": "x"}, "NEWSMON_DATABSE_URL", "did you mean NEWSMON_DATABASE_URL"),
        ({"NEWSMON_ENCRYPTION_KEYS": "short"}, "NEWSMON_ENCRYPTION_KEYS", ""),
    ],
)
def test_bad_settings_raise_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str, words: str
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{setting}: ")
    assert words in message
    assert "\n" not in message
