"""Email over STARTTLS and implicit TLS to aiosmtpd on 127.0.0.1 with a self-signed
certificate the test trusts; the SMTP password, sealed at rest, reaches the server only
inside TLS; a server without STARTTLS is refused rather than used in clear."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from core.delivery.deliveries import SendContext
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    SMTPHandler,
    World,
    free_port,
    world_fixture,
)
from tests.support.tls import self_signed, server_context

PASSWORD = "smtp-Pa55word-xyz"


class Authenticator:
    def __init__(self) -> None:
        self.passwords: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
    ) -> AuthResult:
        self.passwords.append(auth.password.decode())
        return AuthResult(success=auth.password.decode() == PASSWORD)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = self_signed(tmp_path)
    server = server_context(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@pytest.fixture
def mail_server(
    request: pytest.FixtureRequest, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> Iterator[tuple[SMTPHandler, Authenticator, int]]:
    mode: str = request.param
    handler, auth, port = SMTPHandler(), Authenticator(), free_port()
    kwargs: dict[str, Any] = {"authenticator": auth}
    if mode == "starttls":
        kwargs.update(tls_context=tls[0], require_starttls=True)
    elif mode == "tls":
        # aiosmtpd does not see implicit TLS as TLS for its AUTH rule; the socket is TLS.
        kwargs.update(ssl_context=tls[0], auth_require_tls=False)
    else:
        kwargs.update(auth_require_tls=False)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    yield handler, auth, port
    controller.stop()


def config(port: int, security: str) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "username": "newsmon",
        "password": PASSWORD,
        "from": "newsmon@example.com",
        "to": ["reader@example.com"],
    }


@pytest.mark.parametrize("mail_server", ["starttls", "tls"], indirect=True)
def test_email_over_tls_authenticates_with_the_sealed_password(
    world: World,
    mail_server: tuple[SMTPHandler, Authenticator, int],
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    request: pytest.FixtureRequest,
) -> None:
    handler, auth, port = mail_server
    mode = request.node.callspec.params["mail_server"]
    world.channel("email", config(port, mode))
    world.stories(1)
    [delivery_id] = world.plan()
    ctx = SendContext(
        keyring=world.keyring,
        client=world.ctx.client,
        policy=world.ctx.policy,
        smtp_ssl_context=tls[1],
        smtp_timeout_s=5,
    )
    result = world.deliver(delivery_id, ctx=ctx)
    assert result.outcome is not None and result.outcome.kind == "sent", result.outcome
    assert auth.passwords == [PASSWORD] and len(handler.messages) == 1


@pytest.mark.parametrize("mail_server", ["plain"], indirect=True)
def test_starttls_channel_refuses_a_server_without_starttls(
    world: World,
    mail_server: tuple[SMTPHandler, Authenticator, int],
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    handler, auth, port = mail_server
    world.channel("email", config(port, "starttls"))
    world.stories(1)
    [delivery_id] = world.plan()
    ctx = SendContext(
        keyring=world.keyring,
        client=world.ctx.client,
        policy=world.ctx.policy,
        smtp_ssl_context=tls[1],
        smtp_timeout_s=5,
    )
    result = world.deliver(delivery_id, ctx=ctx)
    assert result.outcome is not None and result.outcome.permanent
    assert auth.passwords == [] and handler.messages == []  # nothing said in clear
    assert "STARTTLS" in (world.row(delivery_id).lastError or "")
