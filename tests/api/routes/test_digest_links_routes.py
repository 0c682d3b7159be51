"""One-click links from a rendered digest, followed through the real web app: feedback
lands in the same ``storyFeedback`` row the API writes, unsubscribe removes only that
recipient; forged, expired, replayed or misused links change nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from core.db.models import AuditLog, Channel, DigestStory, Organization, StoryFeedback
from core.db.session import unit_of_work
from core.delivery.channel_editing import create_channel
from core.delivery.digest_links import LINK_KEY_PURPOSE, DigestLinks
from core.delivery.model import load_digest
from core.delivery.presenting import present
from core.delivery.render_email import render_email
from core.secrets import Keyring, generate_key_string, parse_keys
from tests.api.conftest import LOOPBACK_POLICY, FakeClock, Tenant
from tests.support import factories

BASE = "https://newsmon.example"
RECIPIENTS = ["ana@example.com", "ben@example.com"]


@dataclass
class Sent:
    """A digest of one story as emailed to one recipient, and what it points at."""

    story_id: str
    channel_id: str
    relevant: str
    not_relevant: str
    unsubscribe: str


def links_of(keyring: Keyring) -> DigestLinks:
    return DigestLinks(BASE, keyring.derive(LINK_KEY_PURPOSE))


@pytest.fixture
def linked(client: TestClient, keyring: Keyring) -> TestClient:
    """The app with a public address: it signs and accepts links."""
    app: Any = client.app
    app.state.send_context = replace(app.state.send_context, links=links_of(keyring))
    return client


def email_digest(
    engine: Engine, tenant: Tenant, keyring: Keyring, clock: FakeClock, recipient: str
) -> Sent:
    """Store a search, a story, an email channel and a digest; render the email."""
    with unit_of_work(engine) as session:
        organization = session.get(Organization, tenant.id)
        assert organization is not None
        search = factories.news(session, organization, name="Energy")
        story = factories.story(session, search, "https://example.com/a", title="Grid news")
        channel = create_channel(
            session,
            tenant.id,
            name="team mail",
            type_="email",
            config={"host": "127.0.0.1", "from": "n@example.com", "to": RECIPIENTS},
            keyring=keyring,
            policy=LOOPBACK_POLICY,
        )
        delivery = factories.delivery(session, channel, search)
        session.add(DigestStory(digestId=delivery.digestId, storyId=story.id, position=0))
        session.flush()
        digest = load_digest(session, tenant.id, delivery.digestId)
        channel_id, story_id = channel.id, story.id
    shown = present(
        digest, now=clock(), links=links_of(keyring), channel_id=channel_id, recipient=recipient
    )
    message = render_email(
        shown,
        date=clock(),
        sender="n@example.com",
        to=[recipient],
        unsubscribe_url=shown.unsubscribe_url,
    )
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    hrefs = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]
    feedback = [h for h in hrefs if h.startswith(f"{BASE}/d/feedback?t=")]
    assert len(feedback) == 2
    header = parsed["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(.+)>", header)
    assert unsubscribe is not None and f'href="{unsubscribe.group(1)}"' in html
    return Sent(story_id, channel_id, feedback[0], feedback[1], unsubscribe.group(1))


def path(url: str) -> str:
    assert url.startswith(BASE)
    return url.removeprefix(BASE)


def label(engine: Engine, story_id: str) -> tuple[str, str | None] | None:
    with unit_of_work(engine) as session:
        row = session.scalar(select(StoryFeedback).where(StoryFeedback.storyId == story_id))
        return None if row is None else (row.label, row.actorId)


def channel_config(engine: Engine, channel_id: str) -> tuple[dict[str, Any], bool]:
    with unit_of_work(engine) as session:
        row = session.get(Channel, channel_id)
        assert row is not None
        return dict(row.config), row.isActive


def test_feedback_link_asks_then_records_once_in_the_apis_feedback_row(
    linked: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    sent = email_digest(api_engine, org_a, keyring, clock, RECIPIENTS[0])
    page = linked.get(path(sent.relevant))
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert label(api_engine, sent.story_id) is None  # a GET (a mail scanner) decides nothing
    done = linked.post(path(sent.relevant), headers={"x-request-id": "click-1"})
    assert done.status_code == 200 and "marked relevant" in done.text
    assert label(api_engine, sent.story_id) == ("relevant", f"digest:{sent.channel_id}")
    # the API's own feedback route overwrites the same row: one label per story
    response = linked.put(
        f"/stories/{sent.story_id}/feedback",
        headers=org_a.headers,
        json={"label": "not_relevant"},
    )
    assert response.status_code == 200
    assert label(api_engine, sent.story_id) == ("not_relevant", org_a.key_id)
    replayed = linked.post(path(sent.relevant))
    assert replayed.status_code == 200 and "already used" in replayed.text
    assert label(api_engine, sent.story_id) == ("not_relevant", org_a.key_id)
    with unit_of_work(api_engine) as session:
        actions = session.execute(
            select(AuditLog.actorId, AuditLog.requestId).where(
                AuditLog.organizationId == org_a.id, AuditLog.action == "story.feedback"
            )
        ).all()
    assert sorted(a or "" for a, _ in actions) == sorted(
        [f"digest:{sent.channel_id}", org_a.key_id]
    )
    # the click's entry names its request, as every audited request does
    assert (f"digest:{sent.channel_id}", "click-1") in [tuple(a) for a in actions]


def test_forged_expired_and_misused_links_change_nothing(
    linked: TestClient,
    api_engine: Engine,
    org_a: Tenant,
    org_b: Tenant,
    keyring: Keyring,
    clock: FakeClock,
) -> None:
    sent = email_digest(api_engine, org_a, keyring, clock, RECIPIENTS[0])
    token = sent.not_relevant.rsplit("=", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_key = links_of(parse_keys(generate_key_string()))
    foreign = other_key.feedback_url(
        org_a.id, sent.channel_id, sent.story_id, "relevant", now=clock()
    )
    wrong_org = links_of(keyring).feedback_url(
        org_b.id, sent.channel_id, sent.story_id, "relevant", now=clock()
    )
    for url, status in (
        (f"/d/feedback?t={forged}", 400),
        (path(foreign), 400),
        ("/d/feedback?t=", 400),
        (path(sent.unsubscribe).replace("/d/unsubscribe", "/d/feedback"), 400),
        (path(wrong_org), 410),
    ):
        response = linked.post(url)
        assert response.status_code == status, (url, response.text)
    assert label(api_engine, sent.story_id) is None
    clock.advance(days=31)
    expired = linked.post(path(sent.not_relevant))
    assert expired.status_code == 400 and "expired" in expired.text
    assert label(api_engine, sent.story_id) is None


def test_one_click_unsubscribe_removes_only_that_recipient_and_the_org_sees_it(
    linked: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    sent = email_digest(api_engine, org_a, keyring, clock, RECIPIENTS[0])
    page = linked.get(path(sent.unsubscribe))
    assert page.status_code == 200 and RECIPIENTS[0] in page.text
    assert channel_config(api_engine, sent.channel_id)[0]["to"] == RECIPIENTS
    # what a mail client sends for RFC 8058's List-Unsubscribe-Post
    done = linked.post(
        path(sent.unsubscribe),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "unsubscribed" in done.text
    config, active = channel_config(api_engine, sent.channel_id)
    assert config["to"] == RECIPIENTS[1:] and config["unsubscribed"] == RECIPIENTS[:1] and active
    shown = linked.get(f"/channels/{sent.channel_id}", headers=org_a.headers).json()
    assert shown["config"]["unsubscribed"] == RECIPIENTS[:1]
    with unit_of_work(api_engine) as session:
        audit = session.scalars(
            select(AuditLog).where(
                AuditLog.organizationId == org_a.id, AuditLog.action == "channel.unsubscribe"
            )
        ).one()
        assert audit.targetId == sent.channel_id and audit.details == {
            "recipient": RECIPIENTS[0],
            "deactivated": False,
        }
    again = linked.post(path(sent.unsubscribe))
    assert again.status_code == 200 and "already unsubscribed" in again.text
    forged = linked.post(path(sent.unsubscribe)[:-3] + "xyz")
    assert forged.status_code == 400
    assert channel_config(api_engine, sent.channel_id)[0]["to"] == RECIPIENTS[1:]


def test_the_last_recipient_leaving_deactivates_the_channel(
    linked: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    sent = email_digest(api_engine, org_a, keyring, clock, RECIPIENTS[0])
    links = links_of(keyring)
    for recipient in RECIPIENTS:
        url = links.unsubscribe_url(org_a.id, sent.channel_id, recipient, now=clock())
        assert linked.post(path(url)).status_code == 200
    config, active = channel_config(api_engine, sent.channel_id)
    assert config["to"] == [] and config["unsubscribed"] == RECIPIENTS and not active


def test_without_a_public_address_there_are_no_links_to_follow(
    client: TestClient, api_engine: Engine, org_a: Tenant, keyring: Keyring, clock: FakeClock
) -> None:
    sent = email_digest(api_engine, org_a, keyring, clock, RECIPIENTS[0])
    response = client.post(path(sent.relevant))
    assert response.status_code == 404
    assert label(api_engine, sent.story_id) is None
