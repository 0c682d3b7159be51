"""Every apprise scheme newsmon supports, delivered end to end to a local server speaking
its protocol (plain and TLS), and the list held to exactly the schemes tested here; any
other scheme never sends (RELIABILITY row 63's positive list)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller

from core.delivery import channels as ch
from core.delivery.apprise_schemes import SUPPORTED_SCHEMES, supported_plugin
from core.delivery.deliveries import SendContext
from core.errors import ValidationError
from core.fetch import GuardPolicy, build_client
from tests.support import LocalHTTPServer, Request, Response
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    SMTPHandler,
    World,
    free_port,
    world_fixture,
)
from tests.support.dns import FakeDNS
from tests.support.tls import self_signed, server_context

#: The title of a one-story digest of the world's search.
TITLE = "AI: 1 new story"
#: Loopback peers allowed: 127.0.0.1 (own servers), 127.0.0.2 (services' public hosts).
PEERS = GuardPolicy.from_allowlist(["127.0.0.1", "127.0.0.2"], deadline_s=5.0)

Check = Callable[[Request], bool]


def _json(request: Request) -> Any:
    return json.loads(request.body)


#: scheme -> (URL after ``scheme://{host}:{port}``, path the service is posted to, check).
SELF_HOSTED: dict[str, tuple[str, str, Check]] = {
    "json": ("/notify", "/notify", lambda r: _json(r)["title"] == TITLE),
    "form": ("/notify", "/notify", lambda r: parse_qs(r.body.decode())["title"] == [TITLE]),
    "xml": ("/notify", "/notify", lambda r: f"<Subject>{TITLE}</Subject>".encode() in r.body),
    "ntfy": (
        "/newsmon",
        "/",
        lambda r: (_json(r)["topic"], _json(r)["title"]) == ("newsmon", TITLE),
    ),
    "gotify": (
        "/AppTokenXYZ",
        "/message",
        lambda r: r.headers.get("x-gotify-key") == "AppTokenXYZ" and _json(r)["title"] == TITLE,
    ),
    "mmost": ("/hooktoken123", "/hooks/hooktoken123", lambda r: TITLE in _json(r)["text"]),
}
#: scheme -> (URL, the service's fixed public host, path posted to, check): reached by
#: pointing that host's DNS answer at a local TLS server with a certificate for it.
PUBLIC_HOSTED: dict[str, tuple[str, str, str, Check]] = {
    "discord": (
        "discord://1234567/TokenABC",
        "discord.com",
        "/api/webhooks/1234567/TokenABC",
        lambda r: TITLE in _json(r)["content"],
    ),
    "tgram": (
        "tgram://123456789:AABBCCtoken/987654",
        "api.telegram.org",
        "/bot123456789:AABBCCtoken/sendMessage",
        lambda r: _json(r)["chat_id"] == 987654 and "AI" in _json(r)["text"],
    ),
}
#: SMTP schemes and the TLS the local server speaks.
MAIL = {"mailto": "none", "mailtos": "starttls"}


def ok(_request: Request) -> Response:
    return Response(
        200, b'{"id": 1, "ok": true, "result": {}}', {"Content-Type": "application/json"}
    )


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A certificate for the local peers, trusted by requests and ssl's defaults."""
    hosts = [host for _, host, _, _ in PUBLIC_HOSTED.values()]
    cert, key = self_signed(tmp_path, names=hosts, ips=["127.0.0.1", "127.0.0.2"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


def deliver(world: World, url: str) -> tuple[Any, Any]:
    world.channel("apprise", {"url": url})
    world.stories(1)
    [delivery_id] = world.plan()
    ctx = SendContext(keyring=world.keyring, client=build_client(PEERS), policy=PEERS)
    result = world.deliver(delivery_id, ctx=ctx)
    return result.outcome, world.row(delivery_id)


def test_the_list_is_exactly_the_schemes_tested_here() -> None:
    tested = {*SELF_HOSTED, *(s + "s" for s in SELF_HOSTED), *PUBLIC_HOSTED, *MAIL}
    assert set(SUPPORTED_SCHEMES) == tested


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("scheme", sorted(SELF_HOSTED))
def test_self_hosted_service_receives_the_digest(
    world: World, certificate: tuple[Path, Path], scheme: str, secure: bool
) -> None:
    tail, path, check = SELF_HOSTED[scheme]
    tls = server_context(*certificate) if secure else None
    with LocalHTTPServer(routes={path: ok}, tls=tls) as server:
        url = f"{scheme}{'s' if secure else ''}://127.0.0.1:{server.port}{tail}"
        outcome, row = deliver(world, url)
        [request] = server.requests
    assert outcome.kind == "sent", outcome
    assert row.state == "sent" and request.path == path and check(request)


@pytest.mark.parametrize("scheme", sorted(PUBLIC_HOSTED))
def test_public_service_receives_the_digest_at_its_own_host(
    world: World, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    url, host, path, check = PUBLIC_HOSTED[scheme]
    with LocalHTTPServer(
        "127.0.0.2", routes={path: ok}, tls=server_context(*certificate)
    ) as server:
        FakeDNS({host: [("127.0.0.2", server.port)]}).install(monkeypatch)
        outcome, row = deliver(world, url)
        [request] = server.requests
    assert outcome.kind == "sent", outcome
    assert row.state == "sent" and request.headers["host"] == host and check(request)


@pytest.fixture
def mail_server(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[SMTPHandler, int]]:
    handler, port = SMTPHandler(), free_port()
    kwargs: dict[str, Any] = {}
    if MAIL[request.param] == "starttls":
        kwargs.update(tls_context=server_context(*certificate), require_starttls=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.mark.parametrize("mail_server", sorted(MAIL), indirect=True)
def test_mail_schemes_reach_an_smtp_server(
    world: World, mail_server: tuple[SMTPHandler, int], request: pytest.FixtureRequest
) -> None:
    handler, port = mail_server
    scheme = request.node.callspec.params["mail_server"]
    url = (
        f"{scheme}://example.com?smtp=127.0.0.1&port={port}"
        "&from=newsmon@example.com&to=reader@example.com"
        + ("&mode=starttls" if scheme == "mailtos" else "")
    )
    outcome, row = deliver(world, url)
    assert outcome.kind == "sent" and row.state == "sent", outcome
    [raw] = handler.messages  # with require_starttls, mailtos got nowhere in clear
    assert f"Subject: {TITLE}".encode() in raw and b"reader@example.com" in raw


# -- everything else never sends ------------------------------------------------------------


def test_a_stored_syslog_channel_fails_for_good_and_logs_nothing(world: World) -> None:
    calls: list[str] = []

    def spy(event: str, args: tuple[Any, ...]) -> None:
        if event.startswith("syslog."):
            calls.append(event)

    sys.addaudithook(spy)  # counts only; stays harmless for the rest of the run
    world.stored_channel("apprise", ch.AppriseConfig.model_construct(url="syslog://"))
    world.stories(1)
    [delivery_id] = world.plan()
    outcome = world.deliver(delivery_id).outcome
    assert outcome is not None and (outcome.kind, outcome.permanent) == ("failed", True)
    assert "syslog:// is not a supported apprise service" in (
        world.row(delivery_id).lastError or ""
    )
    assert calls == []


def test_a_stored_url_with_a_local_file_template_fails_and_never_opens_the_file(
    world: World, tmp_path: Path
) -> None:
    secret = tmp_path / "service-account.json"
    secret.write_text('{"content": "private key"}')
    opened: list[str] = []

    def spy(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and str(args[0]) == str(secret):
            opened.append(event)

    sys.addaudithook(spy)  # counts only
    url = f"discord://1234567/TokenABC?template={secret}"
    world.stored_channel("apprise", ch.AppriseConfig.model_construct(url=url))
    world.stories(1)
    [delivery_id] = world.plan()
    outcome = world.deliver(delivery_id).outcome
    assert outcome is not None and (outcome.kind, outcome.permanent) == ("failed", True)
    assert "template parameter is not allowed" in (world.row(delivery_id).lastError or "")
    assert opened == []


def test_a_listed_scheme_with_an_unusable_url_is_refused() -> None:
    assert type(supported_plugin("json://127.0.0.1/x")).__name__ == "NotifyJSON"
    with pytest.raises(ValidationError, match="not a valid apprise URL") as refused:
        supported_plugin("mailto://")
    assert refused.value.field == "config.url"
