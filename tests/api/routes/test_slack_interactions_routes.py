"""Slack digests' feedback buttons, clicked through the real web app: a payload Slack
signed records the story's ``storyFeedback`` as the digest link would; a forged
signature, a stale timestamp, a replayed, expired or other organization's token change
nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from core.config import Settings
from core.db.models import DigestStory, Organization, StoryFeedback
from core.db.session import unit_of_work
from core.delivery.digest_links import LINK_KEY_PURPOSE, DigestLinks
from core.delivery.model import load_digest
from core.delivery.presenting import present
from core.delivery.render_slack import render_slack
from core.secrets import Keyring
from tests.api.conftest import FakeClock, Tenant
from tests.support import factories
from workers.pipeline import delivery_context

BASE = "https://newsmon.example"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PATH = "/slack/interactions"


@dataclass
class Posted:
    """A one-story digest as rendered for a Slack channel: its buttons' values."""

    story_id: str
    channel_id: str
    relevant: str
    not_relevant: str


def links_of(keyring: Keyring) -> DigestLinks:
    return DigestLinks(BASE, keyring.derive(LINK_KEY_PURPOSE))


def configure(client: TestClient, keyring: Keyring, secret: str = SECRET) -> None:
    app: Any = client.app
    app.state.send_context = replace(app.state.send_context, links=links_of(keyring))
    app.state.settings = app.state.settings.model_copy(
        update={"slack_signing_secret": SecretStr(secret)}
    )


@pytest.fixture
def slack(client: TestClient, keyring: Keyring) -> TestClient:
    """The app with a public address and a Slack signing secret."""
    configure(client, keyring)
    return client


def slack_digest(engine: Engine, tenant: Tenant, keyring: Keyring, clock: FakeClock) -> Posted:
    """Store a search, a story, a Slack channel and a digest; render it with buttons."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization, name="Energy")
        story = factories.story(session, search, "https://example.com/a", title="Grid news")
        channel = factories.channel(session, organization, "slack")
        delivery = factories.delivery(session, channel, search)
        session.add(DigestStory(digestId=delivery.digestId, storyId=story.id, position=0))
        session.flush()
        digest = load_digest(session, tenant.id, delivery.digestId)
        channel_id, story_id = channel.id, story.id
    shown = present(digest, now=clock(), links=links_of(keyring), channel_id=channel_id)
    [message] = render_slack(shown, buttons=True)
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    yes, no = actions["elements"]
    return Posted(story_id, channel_id, yes["value"], no["value"])


def payload(*values: str, action_id: str = "newsmon_feedback_relevant") -> bytes:
    """The form body of a ``block_actions`` request clicking buttons of ``values``."""
    actions = [
        {"action_id": action_id, "block_id": "b", "type": "button", "value": v} for v in values
    ]
    data = {"type": "block_actions", "user": {"id": "U1"}, "actions": actions}
    return urlencode({"payload": json.dumps(data)}).encode()


def signed(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """Headers Slack sends: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "x-slack-request-timestamp": str(timestamp),
        "x-slack-signature": f"v0={digest}",
        "content-type": "application/x-www-form-urlencoded",
    }


def click(client: TestClient, clock: FakeClock, body: bytes, **kwargs: Any) -> Any:
    now = int(clock().timestamp())
    return client.post(PATH, content=body, headers=signed(body, now, **kwargs))


def label(engine: Engine, story_id: str) -> tuple[str, str | None] | None:
    with unit_of_work(engine) as session:
        row = session.scalar(select(StoryFeedback).where(StoryFeedback.storyId == story_id))
        return None if row is None else (row.label, row.actorId)


def test_a_signed_click_records_feedback_once(
    slack: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    posted = slack_digest(api_engine, org_a, keyring, clock)
    done = click(slack, clock, payload(posted.not_relevant))
    assert done.status_code == 200, done.text
    assert "marked not relevant" in done.json()["text"]
    assert label(api_engine, posted.story_id) == ("not_relevant", f"digest:{posted.channel_id}")
    # the same button again (a replay, or Slack retrying): nothing changes
    replayed = click(slack, clock, payload(posted.not_relevant))
    assert replayed.status_code == 200 and "already used" in replayed.json()["text"]
    # the other button still works once
    assert click(slack, clock, payload(posted.relevant)).status_code == 200
    assert label(api_engine, posted.story_id) == ("relevant", f"digest:{posted.channel_id}")


def test_forged_stale_and_malformed_requests_change_nothing(
    slack: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    posted = slack_digest(api_engine, org_a, keyring, clock)
    body = payload(posted.relevant)
    now = int(clock().timestamp())
    forged = slack.post(PATH, content=body, headers=signed(body, now, secret="not-" + SECRET))
    assert forged.status_code == 401
    stale = slack.post(PATH, content=body, headers=signed(body, now - 301))
    assert stale.status_code == 401
    altered = signed(body, now)
    assert slack.post(PATH, content=body + b"x", headers=altered).status_code == 401
    assert slack.post(PATH, content=body).status_code == 401  # unsigned
    bad_time = {**signed(body, now), "x-slack-request-timestamp": "soon"}
    assert slack.post(PATH, content=body, headers=bad_time).status_code == 401
    for malformed in (
        b"payload=not-json",
        b"nothing=here",
        urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(),
        urlencode({"payload": json.dumps({"type": "block_actions", "actions": "x"})}).encode(),
        urlencode({"payload": "[]"}).encode(),
    ):
        response = click(slack, clock, malformed)
        assert response.status_code == 400, (malformed, response.text)
    assert label(api_engine, posted.story_id) is None
    # within the five minutes, the genuine click still counts
    assert click(slack, clock, body).status_code == 200
    assert label(api_engine, posted.story_id) == ("relevant", f"digest:{posted.channel_id}")


def test_expired_altered_and_other_organizations_tokens_change_nothing(
    slack: TestClient,
    api_engine: Engine,
    org_a: Tenant,
    org_b: Tenant,
    keyring: Keyring,
    clock: FakeClock,
) -> None:
    posted = slack_digest(api_engine, org_a, keyring, clock)
    wrong_org = links_of(keyring).feedback_token(
        org_b.id, posted.channel_id, posted.story_id, "relevant", now=clock()
    )
    altered = posted.relevant[:-2] + ("AA" if not posted.relevant.endswith("AA") else "BB")
    answer = click(slack, clock, payload(wrong_org, altered))
    assert answer.status_code == 200
    assert "no longer exists" in answer.json()["text"]
    assert "not a valid newsmon link" in answer.json()["text"]
    # a button that is not ours is ignored
    assert click(slack, clock, payload(posted.relevant, action_id="other")).json()["text"] == ""
    assert label(api_engine, posted.story_id) is None
    clock.advance(days=31)
    expired = click(slack, clock, payload(posted.relevant))
    assert expired.status_code == 200 and "expired" in expired.json()["text"]
    assert label(api_engine, posted.story_id) is None


def test_the_route_exists_only_with_a_signing_secret_and_a_public_address(
    client: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    posted = slack_digest(api_engine, org_a, keyring, clock)
    body = payload(posted.relevant)
    assert click(client, clock, body).status_code == 404  # neither
    app: Any = client.app
    app.state.settings = app.state.settings.model_copy(
        update={"slack_signing_secret": SecretStr(SECRET)}
    )
    assert click(client, clock, body).status_code == 404  # no public address
    configure(client, keyring, secret="")
    assert click(client, clock, body).status_code == 404  # no secret
    assert label(api_engine, posted.story_id) is None


@pytest.mark.parametrize(
    ("public_url", "secret", "buttons"),
    [(BASE, SECRET, True), (BASE, "", False), ("", SECRET, False)],
)
def test_deliveries_send_buttons_only_with_a_secret_and_a_public_address(
    tmp_path: Path, public_url: str, secret: str, buttons: bool
) -> None:
    settings = Settings(data_dir=tmp_path, public_url=public_url, slack_signing_secret=secret)
    assert delivery_context(settings).slack_buttons is buttons
    # a secret: masked wherever settings are shown
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
