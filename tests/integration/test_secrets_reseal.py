"""Key rotation on the real PostgreSQL (rows 55, 57): rows sealed under an old key open
during the overlap, ``reseal`` moves them to the new key (idempotent, resumable, safe
beside an edit), and after the old key is dropped every row still opens; a seal moved to
another organization's row never opens."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from core.db.models import Channel, Organization
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.reseal import ResealReport, reseal_channels
from core.secrets import Keyring, SecretsError, generate_key_string
from tests.support import factories
from tests.support.dead_letter_world import wait_until

OLD, NEW, LOST = generate_key_string(), generate_key_string(), generate_key_string()
SIGNING = "whsec_" + base64.b64encode(b"signing-key-of-the-rotation-test").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"previous-key-of-the-rotation-tst").decode()
EMAIL = {"host": "smtp.example.com", "from": "n@example.com", "to": ["a@example.com"]}
#: One channel of each kind with secrets (and two without), per organization.
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    (
        "webhook",
        {"url": "https://r.example/h?token=t0k", "secret": SIGNING, "previousSecret": PREVIOUS},
    ),
    ("slack", {"url": "https://hooks.slack.com/services/T0/B0/lowercasetoken"}),
    ("email", {**EMAIL, "username": "u", "password": "smtp-password-1"}),
    ("apprise", {"url": "ntfy://mysecrettopic"}),
    ("email", EMAIL),  # nothing sealed
    ("file", {"directory": "digests"}),  # nothing sealed, not even looked at
]


def seal_all(
    engine: Engine, ring: Keyring, slugs: tuple[str, ...] = ("org-a", "org-b")
) -> dict[str, Any]:
    """Channels of ``CONFIGS`` for each organization, sealed with ``ring``; returns the
    clear config of each channel id."""
    clear: dict[str, Any] = {}
    with unit_of_work(engine) as session:
        for slug in slugs:
            organization = factories.org(session, slug)
            for type_, config in CONFIGS:
                channel = factories.channel(session, organization, type_)
                valid = ch.validate_config(type_, config)
                channel.config = ch.seal_config(type_, valid, ring, organization.id, channel.id)
                clear[channel.id] = valid
    return clear


def open_all(engine: Engine, ring: Keyring) -> dict[str, Any]:
    with unit_of_work(engine) as session:
        return {
            c.id: ch.open_config(c.type, c.config, ring, c.organizationId, c.id)
            for c in session.scalars(select(Channel))
        }


def kids(engine: Engine) -> set[str]:
    """Key ids of every seal in the ``channels`` table."""
    with unit_of_work(engine) as session:
        found = set()
        for channel in session.scalars(select(Channel)):
            for name in ch.SECRET_FIELDS[channel.type]:
                if name in channel.config:
                    found.add(channel.config[name].split(".")[1])
        return found


def test_rotation_overlap_reseal_then_old_key_dropped(pg_engine: Engine) -> None:
    clear = seal_all(pg_engine, Keyring([OLD]))
    overlap = Keyring([NEW, OLD])
    assert open_all(pg_engine, overlap) == clear  # old rows readable during the overlap

    report = reseal_channels(pg_engine, overlap)
    # per organization: four channels resealed, the email without a password current
    assert (report.resealed, report.current, report.failed) == (8, 2, {})
    assert kids(pg_engine) == {overlap.newest_kid}
    assert open_all(pg_engine, Keyring([NEW])) == clear  # the old key dropped

    again = reseal_channels(pg_engine, overlap)
    assert (again.resealed, again.current, again.failed) == (0, 10, {})
    with pytest.raises(SecretsError, match="not configured"):
        open_all(pg_engine, Keyring([OLD]))


def test_an_interrupted_reseal_keeps_its_batches_and_finishes_when_run_again(
    pg_engine: Engine,
) -> None:
    clear = seal_all(pg_engine, Keyring([OLD]), slugs=("org-a",))
    overlap = Keyring([NEW, OLD])

    def interrupt(report: ResealReport) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reseal_channels(pg_engine, overlap, batch_size=2, after_batch=interrupt)
    assert kids(pg_engine) == {overlap.newest_kid, Keyring([OLD]).newest_kid}

    seen: list[int] = []
    report = reseal_channels(
        pg_engine, overlap, batch_size=2, after_batch=lambda r: seen.append(r.resealed)
    )
    assert (report.resealed, report.current, report.failed) == (2, 3, {})
    assert len(seen) == 3 and seen[-1] == 2  # five channels with seals, two per batch
    assert open_all(pg_engine, Keyring([NEW])) == clear


def test_seals_under_no_configured_key_are_reported_and_left_alone(pg_engine: Engine) -> None:
    seal_all(pg_engine, Keyring([OLD]), slugs=("org-a",))
    seal_all(pg_engine, Keyring([LOST]), slugs=("org-b",))
    lost = sealed_channels(pg_engine, "org-b")
    assert len(lost) == 4

    report = reseal_channels(pg_engine, Keyring([NEW, OLD]))
    assert (report.resealed, report.current) == (4, 2)  # the plain emails hold no seal
    assert set(report.failed) == set(lost)
    assert all("which is not configured" in why for why in report.failed.values())
    assert sealed_channels(pg_engine, "org-b") == lost  # untouched

    # The old key dropped before resealing: nothing opens, nothing is written.
    before = sealed_channels(pg_engine, "org-a")
    refused = reseal_channels(pg_engine, Keyring([generate_key_string()]))
    assert (refused.resealed, len(refused.failed)) == (0, 8)
    assert sealed_channels(pg_engine, "org-a") == before


def sealed_channels(engine: Engine, slug: str) -> dict[str, dict[str, Any]]:
    """The stored config of each channel of organization ``slug`` that holds a seal."""
    with unit_of_work(engine) as session:
        rows = session.scalars(
            select(Channel).join(Organization).where(Organization.slug == slug)
        ).all()
        return {
            c.id: dict(c.config)
            for c in rows
            if any(name in c.config for name in ch.SECRET_FIELDS[c.type])
        }


def test_a_seal_moved_to_another_organizations_row_never_opens(pg_engine: Engine) -> None:
    seal_all(pg_engine, Keyring([OLD]))
    with unit_of_work(pg_engine) as session:
        a_id, b_id = session.scalars(
            select(Channel.id)
            .join(Organization)
            .where(Channel.type == "slack")
            .order_by(Organization.slug)
        ).all()
    # Swap the two organizations' Slack configs in SQL, as someone with database access could.
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE channels SET config = CASE id WHEN :a THEN (SELECT config FROM channels "
                "WHERE id = :b) ELSE (SELECT config FROM channels WHERE id = :a) END "
                "WHERE id IN (:a, :b)"
            ),
            {"a": a_id, "b": b_id},
        )
    ring = Keyring([NEW, OLD])
    with unit_of_work(pg_engine) as session:
        for channel_id in (a_id, b_id):
            channel = session.get(Channel, channel_id)
            assert channel is not None
            with pytest.raises(SecretsError, match="failed authentication"):
                ch.open_config(
                    channel.type, channel.config, ring, channel.organizationId, channel.id
                )
    report = reseal_channels(pg_engine, ring)
    assert set(report.failed) == {a_id, b_id}
    assert all("failed authentication" in why for why in report.failed.values())


def test_reseal_waits_for_a_concurrent_edit_and_never_overwrites_it(pg_engine: Engine) -> None:
    seal_all(pg_engine, Keyring([OLD]), slugs=("org-a",))
    overlap = Keyring([NEW, OLD])
    with unit_of_work(pg_engine) as session:
        slack = session.scalars(select(Channel).where(Channel.type == "slack")).one()
        slack_id, org_id = slack.id, slack.organizationId
    edited = ch.validate_config("slack", {"url": "https://hooks.slack.com/services/T1/B1/edited"})

    results: list[ResealReport] = []
    with pg_engine.connect() as editor:
        editor_pid = editor.execute(text("SELECT pg_backend_pid()")).scalar_one()
        editor.execute(select(Channel).where(Channel.id == slack_id).with_for_update())
        worker = threading.Thread(
            target=lambda: results.append(reseal_channels(pg_engine, overlap))
        )
        worker.start()
        wait_until(lambda: _blocked_by(pg_engine, editor_pid))
        new_config = ch.seal_config("slack", edited, overlap, org_id, slack_id)
        editor.execute(update(Channel).where(Channel.id == slack_id).values(config=new_config))
        editor.commit()
        worker.join(timeout=30)
    [report] = results
    # the edit was already under the new key, like the email without a password
    assert (report.resealed, report.current, report.failed) == (3, 2, {})
    opened = open_all(pg_engine, Keyring([NEW]))
    assert opened[slack_id] == edited


def _blocked_by(engine: Engine, pid: int) -> bool:
    """Whether some session waits for a lock held by backend ``pid``."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": pid},
            ).scalar_one()
        )
