"""Row 54 for rows stored before the stricter mask: upgrading masks the stored ``urlMasked``
again, so the raw column holds no lower-case token or topic any more."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, text

from core.db.migrate import upgrade
from core.db.session import make_engine
from tests.support.databases import fresh_pg_database
from tests.support.services import require_service

#: Masked forms as the earlier rule stored them: lower-case words and short numbers kept.
OLD_FORMS = {
    "ch_ntfy": ("apprise", "ntfy://ntfy.example.com/mysecrettopic", "ntfy://ntfy.example.com/****"),
    "ch_slack": (
        "slack",
        "https://hooks.slack.com/services/****/****/lowercasetoken",
        "https://hooks.slack.com/services/****/****/****",
    ),
    "ch_hook": (
        "webhook",
        "https://r.example/hook/abc?mode=post",
        "https://r.example/****/****?mode=****",
    ),
}


def _insert_channel(conn: Connection, channel_id: str, type_: str, config: str) -> None:
    conn.execute(
        text(
            'INSERT INTO channels (id, "organizationId", name, type, config, "isActive", '
            "status, \"consecutiveFailures\") VALUES (:id, 'o1', '', :type, :config, :yes, 'ok', 0)"
        ),
        {"id": channel_id, "type": type_, "config": config, "yes": True},
    )


def _remasked_on_upgrade(engine: Engine) -> None:
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO organizations (id, name, slug, "isActive") '
                "VALUES ('o1', 'O', 'o', :yes)"
            ),
            {"yes": True},
        )
        for channel_id, (type_, old, _) in OLD_FORMS.items():
            _insert_channel(conn, channel_id, type_, f'{{"url": "v1.x", "urlMasked": "{old}"}}')
        _insert_channel(conn, "ch_file", "file", '{"directory": "digests"}')
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, CAST(config AS TEXT) FROM channels")).all()
    raw: dict[str, str] = {channel_id: config for channel_id, config in rows}
    for channel_id, (_, old, new) in OLD_FORMS.items():
        assert new in raw[channel_id] and old not in raw[channel_id]
        assert '"url": "v1.x"' in raw[channel_id]  # the seal is untouched
    assert "mysecrettopic" not in str(raw) and "lowercasetoken" not in str(raw)
    assert '"directory": "digests"' in raw["ch_file"]


def test_upgrade_masks_stored_urls_again_on_postgresql() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with fresh_pg_database(migrate=False) as url:
        engine = make_engine(url)
        try:
            _remasked_on_upgrade(engine)
        finally:
            engine.dispose()


def test_upgrade_masks_stored_urls_again_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        _remasked_on_upgrade(engine)
    finally:
        engine.dispose()
