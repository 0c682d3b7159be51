"""Failed deliveries from the shell: `newsmon delivery failed` and `newsmon delivery replay`."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from core.db.models import AuditLog, Delivery, Organization
from core.db.session import make_engine, unit_of_work
from tests.e2e.test_cli import newsmon
from tests.support import factories


def test_a_failed_delivery_is_listed_replayed_once_and_audited(tmp_path: Path) -> None:
    assert newsmon("org", "create", "Acme", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'newsmon.db'}")
    try:
        with unit_of_work(engine) as session:
            org = session.scalars(select(Organization).where(Organization.slug == "acme")).one()
            search = factories.news(session, org)
            hook = factories.channel(session, org)
            failed = factories.delivery(
                session, hook, search, state="failed", attempts=5, lastError="HTTP 410"
            ).id
            org_id = org.id

        listed = newsmon("delivery", "failed", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        [line] = listed.stdout.splitlines()
        shown = json.loads(line)
        assert {k: shown[k] for k in ("id", "organization", "channelType", "state")} == {
            "id": failed,
            "organization": "acme",
            "channelType": "webhook",
            "state": "failed",
        }
        assert (shown["attempts"], shown["lastError"]) == (5, "HTTP 410")

        replayed = newsmon("delivery", "replay", failed, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        # embedded: no broker to enqueue on; the running system's sweeper sends it
        assert json.loads(replayed.stdout) == {"id": failed, "state": "pending", "enqueued": False}
        with unit_of_work(engine) as session:
            row = session.get_one(Delivery, failed)
            assert (row.state, row.attempts) == ("pending", 0)
            audit = session.scalars(select(AuditLog).where(AuditLog.targetId == failed)).one()
            assert (audit.organizationId, audit.action, audit.actorType, audit.actorId) == (
                org_id,
                "delivery.replay",
                "operator",
                "cli",
            )
        assert newsmon("delivery", "failed", cwd=tmp_path).stdout == ""

        again = newsmon("delivery", "replay", failed, cwd=tmp_path)
        assert again.returncode == 2
        assert again.stderr.strip() == (
            f"error: delivery {failed} is pending, not failed: it is still under way"
        )
        missing = newsmon("delivery", "replay", "nope", cwd=tmp_path)
        assert (missing.returncode, missing.stderr.strip()) == (2, "error: no such delivery")
    finally:
        engine.dispose()
