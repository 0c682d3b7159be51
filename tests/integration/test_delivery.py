"""Delivery against real protocol peers on 127.0.0.1 (rows 14, 27, 40-45, 51-54, 57-58),
on SQLite and PostgreSQL: signed webhooks checked by the ``standardwebhooks`` verifier,
Slack payloads, retries on an injected clock, replay, and secrets at rest."""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.db.models import Channel, Delivery, News, Story
from core.db.session import unit_of_work
from core.delivery import channels as ch
from core.delivery.claims import DELIVERY_LEASE, claim_and_load, claim_delivery
from core.delivery.deliveries import (
    SendContext,
    deliveries_to_enqueue,
    send_test_digest,
)
from core.delivery.digests import held_stories
from core.delivery.model import load_digest
from core.delivery.record import MAX_DELIVERY_ATTEMPTS
from core.delivery.replay import replay_delivery
from core.delivery.send_webhook import webhook_headers
from core.fetch import GuardPolicy, build_client
from tests.support import factories
from tests.support.delivery import (  # noqa: F401  (world is a fixture)
    OLD_SECRET,
    POLICY,
    SECRET,
    START,
    World,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, RawConnection, Request, Response


def scripted(
    *statuses: int, headers: dict[str, str] | None = None
) -> Callable[[Request], Response]:
    """Answer each request with the next status (the last one repeats)."""
    answers = list(statuses)

    def handle(_request: Request) -> Response:
        status = answers.pop(0) if len(answers) > 1 else answers[0]
        return Response(
            status=status, body=b"nope" if status >= 300 else b"ok", headers=headers or {}
        )

    return handle


def test_webhook_verifies_with_standardwebhooks_and_marks_stories_delivered(world: World) -> None:
    world.clock.now = datetime.now(UTC)  # the verifier checks the timestamp against real time
    with LocalHTTPServer(routes={"/hook": Response(body=b"thanks")}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        story_ids = world.stories(2)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
        assert result.outcome is not None and result.outcome.kind == "sent"
        [request] = server.requests
    Webhook(SECRET).verify(request.body, request.headers)  # raises if the signature is wrong
    assert request.headers["webhook-id"] == delivery_id
    payload = json.loads(request.body)
    assert payload["version"] == 1
    assert {s["title"] for s in payload["digest"]["stories"]} == {
        "Story <0> & co",
        "Story <1> & co",
    }
    row = world.row(delivery_id)
    assert (row.state, row.attempts, row.lastStatusCode, row.response) == ("sent", 1, 200, "thanks")
    with unit_of_work(world.engine) as session:
        assert all(session.get(Story, i).wasDelivered for i in story_ids)  # type: ignore[union-attr]
        assert session.get(News, world.news_id).lastSent is not None  # type: ignore[union-attr]


def test_a_digest_sent_to_a_second_channel_leaves_its_delivered_stories_unwritten(
    world: World,
) -> None:
    with LocalHTTPServer(routes={"/a": Response(body=b"ok"), "/b": Response(body=b"ok")}) as hook:
        for path in ("/a", "/b"):
            world.channel("webhook", {"url": hook.url_for(path), "secret": SECRET})
        story_ids = world.stories(2)
        first, second = world.plan()
        sent_at = world.clock()
        assert world.deliver(first).outcome.kind == "sent"  # type: ignore[union-attr]
        world.clock.now += timedelta(minutes=5)
        assert world.deliver(second).outcome.kind == "sent"  # type: ignore[union-attr]
    with unit_of_work(world.engine) as session:
        stories = [session.get(Story, i) for i in story_ids]
        # Marked once, by the first send: the second rewrites no story row.
        assert all(s is not None and s.wasDelivered for s in stories)
        assert {s.updatedAt for s in stories if s is not None} == {sent_at}


def test_tampered_stale_and_future_webhooks_are_rejected_and_rotation_verifies_both() -> None:
    config = ch.WebhookConfig(url="https://r.example/", secret=SECRET, previousSecret=OLD_SECRET)
    body = b'{"version":1}'
    now = datetime.now(UTC)
    headers = webhook_headers(config, "dlv_1", body, now)
    Webhook(SECRET).verify(body, headers)
    Webhook(OLD_SECRET).verify(body, headers)  # receivers not yet rotated still verify
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(
            body, webhook_headers(config, "dlv_1", body, now - timedelta(minutes=6))
        )
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(
            body, webhook_headers(config, "dlv_1", body, now + timedelta(minutes=6))
        )
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(body, headers)


def test_500_five_times_then_200_is_six_attempts_one_sent_record_same_webhook_id(
    world: World,
) -> None:
    with LocalHTTPServer(routes={"/hook": scripted(500, 500, 500, 500, 500, 200)}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        waits = []
        for _ in range(6):
            result = world.deliver(delivery_id)
            assert result.outcome is not None
            if result.retry_at is None:
                break
            waits.append(result.retry_at - world.clock.now)
            # Not due yet: a duplicate message sends nothing.
            assert world.deliver(delivery_id).outcome is None
            world.clock.now = result.retry_at
        assert server.hits["/hook"] == 6
        ids = {r.headers["webhook-id"] for r in server.requests}
        stamps = [r.headers["webhook-timestamp"] for r in server.requests]
        signatures = {r.headers["webhook-signature"] for r in server.requests}
    assert ids == {delivery_id}
    assert len(set(stamps)) == 6 and len(signatures) == 6
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert timedelta(seconds=15) <= waits[0] <= timedelta(seconds=30)
    row = world.row(delivery_id)
    assert (row.state, row.attempts) == ("sent", 6)
    with unit_of_work(world.engine) as session:
        sent = session.scalars(select(Delivery).where(Delivery.state == "sent")).all()
    assert len(sent) == 1


def test_429_retry_after_is_honoured(world: World) -> None:
    with LocalHTTPServer(routes={"/hook": scripted(429, headers={"Retry-After": "120"})}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
    row = world.row(delivery_id)
    assert row.state == "pending" and row.lastStatusCode == 429
    assert result.retry_at is not None and result.retry_at >= START + timedelta(seconds=120)
    assert row.nextAttemptAt is not None
    assert row.nextAttemptAt.astimezone(UTC) >= START + timedelta(seconds=120)
    world.clock.now = START + timedelta(seconds=119)
    assert world.deliver(delivery_id).outcome is None


def test_redirect_is_a_failure_and_is_not_followed(world: World) -> None:
    with (
        LocalHTTPServer(routes={"/ok": Response()}) as other,
        LocalHTTPServer(
            routes={"/hook": Response(status=302, headers={"Location": other.url_for("/ok")})}
        ) as server,
    ):
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
        assert other.total_hits == 0
    assert result.outcome is not None and result.outcome.kind == "failed"
    row = world.row(delivery_id)
    assert row.state == "pending" and row.lastStatusCode == 302
    assert "not followed" in (row.lastError or "")


def test_hanging_receiver_times_out_and_the_attempt_is_recorded(world: World) -> None:
    def hang(conn: RawConnection) -> None:
        conn.sleep(10)

    with LocalHTTPServer(raw={"/hook": hang}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "unknown"
    row = world.row(delivery_id)
    # A webhook receiver deduplicates by webhook-id, so an unknown attempt is retried.
    assert row.state == "pending" and "timeout" in (row.lastError or "")


def test_410_marks_the_channel_broken_and_stops_attempts(world: World) -> None:
    with LocalHTTPServer(routes={"/hook": Response(status=410)}) as server:
        channel_id = world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        row = world.row(delivery_id)
        assert (row.state, row.lastStatusCode) == ("failed", 410)
        channel = world.channel_row(channel_id)
        assert channel.status == "broken" and "410" in (channel.lastError or "")
        # The next digest for a broken channel is recorded failed, never attempted.
        world.clock.now += timedelta(minutes=1)
        world.stories(1)
        assert world.plan() == []
        assert server.hits["/hook"] == 1
    with unit_of_work(world.engine) as session:
        states = session.scalars(select(Delivery.state).order_by(Delivery.createdAt)).all()
    assert states == ["failed", "failed"]


def test_permanent_failure_is_visible_and_replay_sends_with_the_same_webhook_id(
    world: World,
) -> None:
    with LocalHTTPServer(routes={"/hook": scripted(400, 200)}) as server:
        channel_id = world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        assert world.row(delivery_id).state == "failed"
        assert world.deliver(delivery_id).outcome is None  # failed is final until replayed
        with unit_of_work(world.engine) as session:
            replay_delivery(session, world.org_id, delivery_id, now=world.clock())
        result = world.deliver(delivery_id)
        assert result.outcome is not None and result.outcome.kind == "sent"
        assert [r.headers["webhook-id"] for r in server.requests] == [delivery_id] * 2
    assert world.channel_row(channel_id).consecutiveFailures == 0


def test_redelivered_message_after_success_sends_nothing(world: World) -> None:
    with LocalHTTPServer(routes={"/hook": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        for _ in range(3):
            assert world.deliver(delivery_id).outcome is None
        assert server.hits["/hook"] == 1
    # Planning again finds nothing held: the stories are in a digest already.
    assert world.plan() == []


def test_consecutive_failures_mark_the_channel_failing_without_losing_its_queue(
    world: World,
) -> None:
    with LocalHTTPServer(routes={"/hook": Response(status=503)}):
        pass  # closed: connections are refused
    channel_id = world.channel("webhook", {"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    world.stories(1)
    [delivery_id] = world.plan()
    for _ in range(3):
        result = world.deliver(delivery_id)
        assert result.retry_at is not None
        world.clock.now = result.retry_at
    assert world.channel_row(channel_id).status == "failing"
    assert world.row(delivery_id).state == "pending"
    world.clock.now += timedelta(hours=1)
    with unit_of_work(world.engine) as session:
        assert delivery_id in deliveries_to_enqueue(session, now=world.clock())


def test_attempts_are_bounded(world: World) -> None:
    world.channel("webhook", {"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    world.stories(1)
    [delivery_id] = world.plan()
    for _ in range(MAX_DELIVERY_ATTEMPTS):
        result = world.deliver(delivery_id)
        if result.retry_at:
            world.clock.now = result.retry_at
    row = world.row(delivery_id)
    assert (row.state, row.attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)


def test_private_webhook_target_is_refused_without_allowlist(world: World) -> None:
    strict = GuardPolicy()
    with LocalHTTPServer(routes={"/hook": Response()}) as server, build_client(strict) as client:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        ctx = SendContext(keyring=world.keyring, client=client, policy=strict)
        result = world.deliver(delivery_id, ctx=ctx)
        assert server.total_hits == 0
    assert result.outcome is not None and result.outcome.permanent
    assert "not allowed" in (world.row(delivery_id).lastError or "")


def test_slack_payload_structure_and_revoked_webhook_marks_channel_broken(world: World) -> None:
    with LocalHTTPServer(
        routes={
            "/services/T1/B1/good": Response(body=b"ok"),
            "/services/T1/B1/gone": Response(status=404, body=b"no_service"),
        }
    ) as server:
        world.channel("slack", {"url": server.url_for("/services/T1/B1/good")})
        gone = world.channel("slack", {"url": server.url_for("/services/T1/B1/gone")})
        world.stories(2)
        good_id, gone_id = world.plan()
        assert world.deliver(good_id).outcome.kind == "sent"  # type: ignore[union-attr]
        world.deliver(gone_id)
        body = json.loads(server.requests[0].body)
    assert body["blocks"][0]["type"] == "header"
    sections = [b for b in body["blocks"] if b["type"] == "section"]
    assert len(sections) == 2
    assert all(s["text"]["type"] == "mrkdwn" for s in sections)
    assert "Story &lt;0&gt; &amp; co" in body["text"] or "&lt;" in sections[0]["text"]["text"]
    assert world.channel_row(gone).status == "broken"
    assert world.row(gone_id).state == "failed"


def test_database_holds_no_channel_secret_in_clear(world: World) -> None:
    token = "xoxb-SECRET-TOKEN-123456"
    world.channel("slack", {"url": f"https://hooks.slack.com/services/T0/B0/{token}"})
    world.channel("webhook", {"url": f"https://r.example/h?token={token}", "secret": SECRET})
    world.channel("apprise", {"url": f"gotifys://gotify.example/{token}"})
    world.channel(
        "email",
        {
            "host": "smtp.example",
            "from": "n@example.com",
            "to": ["a@example.com"],
            "username": "u",
            "password": token,
        },
    )
    with world.engine.connect() as conn:
        raw = " ".join(str(v) for (v,) in conn.execute(text("SELECT config FROM channels")))
    assert token not in raw and SECRET not in raw
    assert "hooks.slack.com" in raw  # the masked URL stays readable
    # Moved to another channel's row, a sealed secret no longer opens.
    with unit_of_work(world.engine) as session:
        first, second = session.scalars(
            select(Channel).where(Channel.type.in_(["slack", "apprise"])).order_by(Channel.type)
        ).all()
        with pytest.raises(Exception, match="failed authentication"):
            ch.open_config(
                "slack",
                {**second.config, "url": first.config["url"]},
                world.keyring,
                second.organizationId,
                second.id,
            )
        shown = ch.public_config(second.type, second.config)
    assert token not in json.dumps(shown)


def test_send_test_digest_returns_the_exact_outcome_and_records_nothing(world: World) -> None:
    with LocalHTTPServer(routes={"/hook": Response(status=401, body=b"bad key")}) as server:
        channel_id = world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        with unit_of_work(world.engine) as session:
            outcome = send_test_digest(session, world.org_id, channel_id, world.ctx, now=START)
        assert server.hits["/hook"] == 1
    assert (outcome.kind, outcome.status, outcome.response, outcome.permanent) == (
        "failed",
        401,
        "bad key",
        True,
    )
    assert world.channel_row(channel_id).consecutiveFailures == 0


def test_file_channel_writes_markdown_and_html(world: World) -> None:
    assert world.ctx.file_root is not None
    folder = world.ctx.file_root / world.org_id / "digests"
    world.channel("file", {"directory": "digests"})
    world.stories(1)
    [delivery_id] = world.plan()
    assert world.deliver(delivery_id).outcome.kind == "sent"  # type: ignore[union-attr]
    names = sorted(os.listdir(folder))
    assert [n.rsplit(".", 1)[1] for n in names] == ["html", "md"]
    with open(os.path.join(folder, names[0]), encoding="utf-8") as handle:
        html = handle.read()
    assert "Story &lt;0&gt; &amp; co" in html


def test_worker_lost_mid_send_resends_webhooks_once_and_marks_others_unknown(
    world: World, tmp_path: Path
) -> None:
    """Row 46 at the database level: a claim whose worker died (lease expired) is swept
    and claimed again; a webhook is sent again with the same webhook-id and recorded
    sent once, a file/email/Slack delivery becomes unknown instead of a silent repeat."""
    with LocalHTTPServer(routes={"/hook": Response()}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.channel("file", {"directory": "out"})
        world.stories(1)
        hook_id, file_id = world.plan()
        with unit_of_work(world.engine) as session:  # both claimed, then the worker dies
            assert claim_delivery(session, hook_id, now=world.clock()) is not None
            assert claim_delivery(session, file_id, now=world.clock()) is not None
        assert world.deliver(hook_id).outcome is None  # still leased: nobody else sends
        world.clock.now += DELIVERY_LEASE + timedelta(seconds=1)
        with unit_of_work(world.engine) as session:
            swept = deliveries_to_enqueue(session, now=world.clock())
        assert set(swept) == {hook_id, file_id}
        assert world.deliver(hook_id).outcome.kind == "sent"  # type: ignore[union-attr]
        assert world.deliver(file_id).outcome.kind == "unknown"  # type: ignore[union-attr]
        assert [r.headers["webhook-id"] for r in server.requests] == [hook_id]
    assert (world.row(hook_id).state, world.row(hook_id).attempts) == ("sent", 2)
    assert world.row(file_id).state == "unknown"
    assert not any(tmp_path.rglob("out"))


def test_clustered_copies_are_not_held_apart_from_their_lead(db_engine):
    """Wire copies sent with a lead go out once, as "also reported by"; a story clustered
    under a first story that was filtered is held on its own."""
    with unit_of_work(db_engine) as s:
        search = factories.news(s, factories.org(s, "wire"))
        lead = factories.story(s, search, "https://a.example/1")
        lead.clusterId = lead.id
        copy = factories.story(
            s, search, "https://b.example/1", clusterId=lead.id, duplicateOfId=lead.id
        )
        alone = factories.story(s, search, "https://c.example/2")
        filtered = factories.story(s, search, "https://d.example/3", isFiltered=True)
        filtered.clusterId = filtered.id
        promoted = factories.story(s, search, "https://e.example/3", clusterId=filtered.id)
        s.flush()
        held = {h.id for h in held_stories(s, search.organizationId, search.id)}
    assert held == {lead.id, alone.id, promoted.id}
    assert copy.id not in held


def test_a_claim_reads_the_digest_and_channel_as_stored_or_claims_nothing(world: World) -> None:
    channel_id = world.channel("webhook", {"url": "http://127.0.0.1:9/hook", "secret": SECRET})
    story_ids = world.stories(3)
    with unit_of_work(world.engine) as session:  # a copy sent with the first story
        search = session.get_one(News, world.news_id)
        factories.story(session, search, "https://copy.example/1", duplicateOfId=story_ids[0])
    [delivery_id] = world.plan()
    with world.engine.connect() as conn:
        loaded = claim_and_load(conn, delivery_id, now=world.clock())
    assert loaded is not None and (loaded.claim.attempt, loaded.claim.resumed) == (1, False)
    with unit_of_work(world.engine) as session:
        stored = load_digest(session, world.org_id, world.row(delivery_id).digestId)
        channel = session.get_one(Channel, channel_id)
    assert loaded.digest == stored
    assert [s.id for s in loaded.digest.stories] == [s.id for s in stored.stories]
    assert sum(len(s.also_reported) for s in loaded.digest.stories) == 1
    assert (loaded.channel.id, loaded.channel.config) == (channel.id, channel.config)
    assert world.row(delivery_id).state == "sending"
    with world.engine.connect() as conn:  # claimed: a second claim gets nothing
        assert claim_and_load(conn, delivery_id, now=world.clock()) is None


def test_a_changed_channel_config_is_opened_anew_for_its_next_send(world: World) -> None:
    """The send context keeps configs it opened; a config saved since (sealed anew) is
    opened again, so the next delivery goes where the channel now points."""
    with LocalHTTPServer(routes={"/old": Response(), "/new": Response()}) as server:
        channel_id = world.channel("webhook", {"url": server.url_for("/old"), "secret": SECRET})
        world.stories(1)
        [first] = world.plan()
        world.deliver(first)
        changed = ch.validate_config("webhook", {"url": server.url_for("/new"), "secret": SECRET})
        with unit_of_work(world.engine) as session:
            row = session.get(Channel, channel_id)
            assert row is not None
            row.config = ch.seal_config("webhook", changed, world.keyring, world.org_id, channel_id)
        world.clock.now += timedelta(hours=1)
        world.stories(1)
        [second] = world.plan()
        world.deliver(second)
        assert (server.hits["/old"], server.hits["/new"]) == (1, 1)
    assert world.row(second).state == "sent"
    assert len(world.ctx.opened) == 2  # one entry per sealed config


def test_a_receivers_answer_with_nul_bytes_is_recorded(world: World) -> None:
    """PostgreSQL text cannot hold NUL: a receiver answering with one (on purpose or
    not) still gets its delivery recorded, the byte shown as a replacement character."""
    with LocalHTTPServer(routes={"/hook": Response(body=b"ok\x00done")}) as server:
        world.channel("webhook", {"url": server.url_for("/hook"), "secret": SECRET})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "sent"
    row = world.row(delivery_id)
    assert (row.state, row.response) == ("sent", "ok\ufffddone")
