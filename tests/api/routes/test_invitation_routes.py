"""Invitations (row 62): the token reaches only the invitee's mailbox (a real SMTP server on
127.0.0.1), accepting is the invitee's act, a key invites only within its authority, and
no response shows another organization's users."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from core.clock import utcnow
from core.config import Settings
from core.db.models import AuditLog, Invitation
from core.db.session import unit_of_work
from core.keys import hash_key
from core.tenancy.members import add_member, user_for_email
from tests.api.conftest import Tenant, another_key
from tests.support.delivery import SMTPHandler, smtp_server

SENDER = "newsmon <noreply@newsmon.example>"


@pytest.fixture
def owner_user_id(api_engine: Engine, org_a: Tenant) -> str:
    with unit_of_work(api_engine) as session:
        user = user_for_email(session, "owner@a.example", "Owner of A")
        add_member(session, org_a.id, user.id, "owner")
        return user.id


@pytest.fixture
def mailbox(client: TestClient) -> Iterator[SMTPHandler]:
    """The operator's relay: a real SMTP server the app is configured to send through."""
    with smtp_server() as (handler, port):
        client.app.state.settings = Settings(  # type: ignore[attr-defined]
            smtp_url=f"smtp://127.0.0.1:{port}?security=none", mail_from=SENDER
        )
        yield handler


def invite(client: TestClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    body.setdefault("email", "Ada@Example.com")
    response: httpx.Response = client.post("/invitations", json=body, headers=headers)
    return response


def mail_to(mailbox: SMTPHandler, address: str) -> EmailMessage:
    [raw] = [
        m for m, to in zip(mailbox.messages, mailbox.recipients, strict=True) if to == [address]
    ]
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert (message["From"], message["To"]) == (SENDER, address)
    return message


def mailed_token(mailbox: SMTPHandler, address: str) -> str:
    found = re.search(r'"token": "([^"]+)"', mail_to(mailbox, address).get_content())
    assert found is not None
    return found.group(1)


def invitation_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Invitation)) or 0


def test_the_token_goes_only_to_the_invitees_mailbox(
    client: TestClient,
    org_a: Tenant,
    owner_user_id: str,
    mailbox: SMTPHandler,
    api_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    created = invite(client, org_a.headers)
    assert created.status_code == 201, created.text
    assert "token" not in created.json()
    assert mailbox.recipients == [["ada@example.com"]]
    token = mailed_token(mailbox, "ada@example.com")
    message = mail_to(mailbox, "ada@example.com")
    assert message["Subject"] == "Invitation to join Org-A on newsmon"
    listed = client.get("/invitations", headers=org_a.headers).text
    read = client.get(f"/invitations/{created.json()['id']}", headers=org_a.headers).text
    assert all(token not in text for text in (created.text, listed, read))
    with api_engine.connect() as conn:
        stored = conn.execute(select(Invitation)).one()
        audit = list(conn.scalars(select(AuditLog.details)))
    assert stored.tokenHash == hash_key(token) and token not in str(audit)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    assert ours and not any(token in line for line in ours)  # aiosmtpd's own log aside
    accepted = client.post(
        "/invitations/accept",
        json={"token": token, "name": "Ada"},
        headers={"x-request-id": "accept-1"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["member"]["role"] == "member"
    with api_engine.connect() as conn:
        joined = conn.execute(
            select(AuditLog.actorType, AuditLog.requestId).where(
                AuditLog.action == "invitation.accept"
            )
        ).one()
    assert tuple(joined) == ("user", "accept-1")
    assert client.post("/invitations/accept", json={"token": token}).status_code == 404
    members = client.get("/members", headers=org_a.headers).json()["items"]
    assert {(m["email"], m["name"]) for m in members} == {
        ("owner@a.example", "Owner of A"),
        ("ada@example.com", "Ada"),
    }


def test_a_key_of_one_org_cannot_enrol_a_user_of_another(
    client: TestClient,
    org_a: Tenant,
    org_b: Tenant,
    owner_user_id: str,
    mailbox: SMTPHandler,
    api_engine: Engine,
) -> None:
    with unit_of_work(api_engine) as session:
        bob = user_for_email(session, "bob@b.example", "Bob of B")
        carol = user_for_email(session, "carol@b.example", "Carol of B")
        add_member(session, org_b.id, bob.id, "member")
        add_member(session, org_b.id, carol.id, "member")
        bob_id, carol_id = bob.id, carol.id
    secrets = (bob_id, carol_id, "Bob of B", "Carol of B", owner_user_id)
    created = invite(client, org_a.headers, email="bob@b.example")
    listed = client.get("/invitations", headers=org_a.headers)
    read = client.get(f"/invitations/{created.json()['id']}", headers=org_a.headers)
    for response in (created, listed, read):
        assert response.status_code in (200, 201)
        assert bob_id not in response.text and "Bob of B" not in response.text
    # only bob's mailbox got the token; without it, A cannot make him a member
    assert mailbox.recipients == [["bob@b.example"]]
    assert client.post("/invitations/accept", json={"token": "x" * 43}).status_code == 404
    assert "bob@b.example" not in client.get("/members", headers=org_a.headers).text
    accepted = client.post(
        "/invitations/accept", json={"token": mailed_token(mailbox, "bob@b.example")}
    )
    assert accepted.status_code == 200, accepted.text
    assert not any(s in accepted.text for s in secrets)
    assert accepted.json()["invitation"]["organizationName"] == "Org-A"
    assert "bob@b.example" in client.get("/members", headers=org_a.headers).text
    invite(client, org_a.headers, email="carol@b.example")
    rejected = client.post(
        "/invitations/reject", json={"token": mailed_token(mailbox, "carol@b.example")}
    )
    assert rejected.json()["status"] == "rejected"
    assert not any(s in rejected.text for s in secrets)


def test_a_key_invites_only_within_its_authority(
    client: TestClient, org_a: Tenant, owner_user_id: str, mailbox: SMTPHandler, api_engine: Engine
) -> None:
    inviter = another_key(api_engine, org_a, permissions={"invitations": ["read", "write"]})
    admin = invite(client, inviter.headers, role="admin")
    assert admin.status_code == 403 and "members:write" in admin.json()["error"]["message"]
    owner = invite(client, org_a.headers, role="owner")  # even with every permission
    assert owner.status_code == 403, owner.text
    assert owner.json()["error"]["fields"][0]["field"] == "role"
    assert invite(client, inviter.headers, role="member").status_code == 201
    manager = another_key(
        api_engine,
        org_a,
        permissions={"invitations": ["write"], "members": ["write"]},
    )
    assert invite(client, manager.headers, role="admin", email="b@example.com").status_code == 201
    assert invitation_count(api_engine) == 2
    assert len(mailbox.messages) == 2


def test_an_operator_invites_an_owner(
    client: TestClient,
    org_a: Tenant,
    owner_user_id: str,
    mailbox: SMTPHandler,
    operator_key: str,
) -> None:
    response = client.post(
        f"/operator/organizations/{org_a.id}/invitations",
        json={"email": "new-owner@example.com", "role": "owner"},
        headers={"x-api-key": operator_key},
    )
    assert response.status_code == 201, response.text
    token = mailed_token(mailbox, "new-owner@example.com")
    accepted = client.post("/invitations/accept", json={"token": token})
    assert accepted.json()["member"]["role"] == "owner"


def test_without_a_mail_sender_inviting_says_how_to_configure_it(
    client: TestClient, org_a: Tenant, owner_user_id: str, api_engine: Engine
) -> None:
    response = invite(client, org_a.headers)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["type"] == "mail_not_configured"
    assert "NEWSMON_SMTP_URL" in error["message"] and "NEWSMON_MAIL_FROM" in error["message"]
    assert invitation_count(api_engine) == 0


def test_a_relay_refusing_the_mail_stores_nothing(
    client: TestClient, org_a: Tenant, owner_user_id: str, mailbox: SMTPHandler, api_engine: Engine
) -> None:
    mailbox.rcpt_reply = "550 5.1.1 mailbox unavailable"
    response = invite(client, org_a.headers)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "mail_unavailable" and "550" in error["message"]
    assert invitation_count(api_engine) == 0


def test_an_unreachable_relay_stores_nothing(
    client: TestClient, org_a: Tenant, owner_user_id: str, api_engine: Engine
) -> None:
    with smtp_server() as (_, port):
        pass  # a port that just stopped listening
    client.app.state.settings = Settings(  # type: ignore[attr-defined]
        smtp_url=f"smtp://127.0.0.1:{port}?security=none", mail_from=SENDER
    )
    response = invite(client, org_a.headers)
    assert response.status_code == 503, response.text
    assert "cannot be reached" in response.json()["error"]["message"]
    assert invitation_count(api_engine) == 0


def test_expired_canceled_and_rejected_invitations(
    client: TestClient, org_a: Tenant, owner_user_id: str, mailbox: SMTPHandler, api_engine: Engine
) -> None:
    expired = invite(client, org_a.headers).json()
    with unit_of_work(api_engine) as session:
        session.execute(
            update(Invitation)
            .where(Invitation.id == expired["id"])
            .values(expiresAt=utcnow() - timedelta(minutes=1))
        )
    token = mailed_token(mailbox, "ada@example.com")
    assert client.post("/invitations/accept", json={"token": token}).status_code == 404
    shown = client.get(f"/invitations/{expired['id']}", headers=org_a.headers).json()
    assert shown["status"] == "expired"
    canceled = invite(client, org_a.headers, email="bob@example.com").json()
    response = client.post(f"/invitations/{canceled['id']}/cancel", headers=org_a.headers)
    assert response.json()["status"] == "canceled"
    token = mailed_token(mailbox, "bob@example.com")
    assert client.post("/invitations/accept", json={"token": token}).status_code == 404
    invite(client, org_a.headers, email="eve@example.com")
    token = mailed_token(mailbox, "eve@example.com")
    assert client.post("/invitations/reject", json={"token": token}).json()["status"] == "rejected"
    assert client.post("/invitations/accept", json={"token": token}).status_code == 404
