"""The connect-time outbound guard (RELIABILITY rows 8, 14, 43, 63): every socket opened
while sending, by whatever library (smtplib, apprise's ``requests``, httpx), is checked
on the IP it actually dials; redirects, DNS rebinding and plugin host parameters are
refused at connect with the policy's reason, and a counting listener sees nothing."""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import apprise
import pytest
from aiosmtpd.controller import Controller

from core.delivery.channel_editing import check_target
from core.delivery.channels import validate_config
from core.delivery.deliveries import SendContext
from core.errors import ConnectNotAllowed, DestinationNotAllowed
from core.fetch import GuardPolicy, approve, build_client, outbound_guard
from tests.support import CountingListener, LocalHTTPServer, Response, redirect
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    SMTPHandler,
    World,
    free_port,
    world_fixture,
)
from tests.support.dns import FakeDNS

#: Production rules: nothing private, nothing loopback.
STRICT = GuardPolicy(connect_timeout_s=2, read_timeout_s=2, deadline_s=5)
#: 127.0.0.2 allowed (the "allowlisted" test peer), 127.0.0.3 and everything else denied.
LO2 = STRICT.replace(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))
#: A public address a lying check-time resolver answers (never dialled).
PUBLIC = "93.184.216.34"


def lying_resolver(host: str, port: int) -> list[str]:
    """Check-time DNS that calls everything public, so only the connect-time guard is left."""
    return [PUBLIC]


def ctx_with(world: World, policy: GuardPolicy, **extra: Any) -> SendContext:
    return SendContext(keyring=world.keyring, client=build_client(policy), policy=policy, **extra)


def deliver_once(world: World, type_: str, config: dict[str, Any], ctx: SendContext) -> Any:
    world.channel(type_, config)
    world.stories(1)
    [delivery_id] = world.plan()
    result = world.deliver(delivery_id, ctx=ctx)
    assert result.outcome is not None
    return result.outcome, world.row(delivery_id)


@pytest.fixture
def smtp_lo2_lo3() -> Iterator[tuple[SMTPHandler, CountingListener]]:
    """An SMTP server on 127.0.0.2 and a counting listener on 127.0.0.3, same port."""
    handler, port = SMTPHandler(), free_port()
    controller = Controller(handler, hostname="127.0.0.2", port=port)
    controller.start()
    with CountingListener("127.0.0.3", port) as lo3:
        yield handler, lo3
    controller.stop()


# -- the hook itself ------------------------------------------------------------------------


def test_inside_a_scope_a_denied_ip_is_refused_at_connect_and_outside_it_is_not() -> None:
    with CountingListener("127.0.0.1") as listener:
        with outbound_guard(STRICT) as guard, pytest.raises(ConnectNotAllowed) as refused:
            socket.create_connection(("127.0.0.1", listener.port), timeout=2)
        assert str(refused.value) == "destination not allowed: 127.0.0.1 is loopback"
        assert isinstance(refused.value, OSError | DestinationNotAllowed)
        assert guard.refused == str(refused.value)
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    assert listener.connections == 1  # only the unguarded one


def test_nested_scopes_must_all_allow_the_address() -> None:
    with CountingListener("127.0.0.2") as listener, outbound_guard(LO2):
        socket.create_connection(("127.0.0.2", listener.port), timeout=2).close()
        with outbound_guard(STRICT), pytest.raises(ConnectNotAllowed):
            socket.create_connection(("127.0.0.2", listener.port), timeout=2)
    assert listener.connections == 1


def test_names_unix_sockets_and_datagrams_are_refused_in_a_scope(tmp_path: Path) -> None:
    unix_path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(unix_path)
    server.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    with CountingListener("127.0.0.1") as listener, outbound_guard(LO2):
        with socket.socket() as sock, pytest.raises(ConnectNotAllowed, match="not an IP"):
            sock.connect(("localhost", listener.port))  # resolved after any check
        with (
            socket.socket(socket.AF_UNIX) as sock,
            pytest.raises(ConnectNotAllowed, match="AF_UNIX"),
        ):
            sock.connect(unix_path)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
            pytest.raises(ConnectNotAllowed, match=r"127\.0\.0\.1 is loopback"),
        ):
            sock.sendto(b"x", udp.getsockname())
    udp.setblocking(False)
    with pytest.raises(BlockingIOError):
        udp.recv(1)  # nothing arrived
    assert listener.connections == 0
    udp.close()
    server.close()


def test_the_scope_reaches_threads_given_its_context_as_apprise_does() -> None:
    """apprise runs services on its own pool through ``contextvars.copy_context()``."""
    with CountingListener("127.0.0.1") as listener, ThreadPoolExecutor(1) as pool:
        with outbound_guard(STRICT) as guard:
            future = pool.submit(
                contextvars.copy_context().run,
                socket.create_connection,
                ("127.0.0.1", listener.port),
                2,
            )
            with pytest.raises(ConnectNotAllowed):
                future.result()
        assert guard.refused is not None
    assert listener.connections == 0


def test_an_allowlisted_host_name_allows_the_addresses_it_was_checked_with_only() -> None:
    by_name = STRICT.replace(allowed_hosts=frozenset({"mail.internal"}))
    with (
        CountingListener("127.0.0.2") as lo2,
        CountingListener("127.0.0.3", lo2.port) as lo3,
        outbound_guard(by_name),
    ):
        approve("mail.internal", [ipaddress.ip_address("127.0.0.2")])
        socket.create_connection(("127.0.0.2", lo2.port), timeout=2).close()
        with pytest.raises(ConnectNotAllowed, match=r"127\.0\.0\.3 is loopback"):
            socket.create_connection(("127.0.0.3", lo2.port), timeout=2)
    assert (lo2.connections, lo3.connections) == (1, 0)


def test_guarded_fetch_of_a_host_allowlisted_by_name_passes_the_hook() -> None:
    by_name = STRICT.replace(allowed_hosts=frozenset({"feeds.internal"}))
    with LocalHTTPServer(routes={"/feed": Response(body=b"ok")}) as server:
        resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
        with build_client(by_name, resolver=resolver) as client:
            result = client.fetch(f"http://feeds.internal:{server.port}/feed")
    assert result.body == b"ok"


def test_guard_and_tripwire_coexist(tripwire: list[str]) -> None:
    with CountingListener("127.0.0.2") as lo2, outbound_guard(LO2):
        socket.create_connection(("127.0.0.2", lo2.port), timeout=2).close()
        with pytest.raises(ConnectNotAllowed):
            socket.create_connection(("127.0.0.3", lo2.port), timeout=2)
        with pytest.raises(OSError, match="tripwire"):
            socket.create_connection(("192.0.2.1", 80), timeout=2)
    assert tripwire == ["127.0.0.2", "127.0.0.3", "192.0.2.1"]
    assert lo2.connections == 1


# -- row 63: apprise's own connections ------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "smtp=127.0.0.1&port={port}",
        "smtp=127.0.0.1&port={port}&to=reader@example.com",
        "smtp=127.0.0.1&port={port}&from=newsmon@example.com&to=reader@example.com",
    ],
)
def test_apprise_mailto_smtp_parameter_is_refused_at_connect(world: World, query: str) -> None:
    """The check-time resolver lies (calls everything public): the connect-time guard alone
    keeps apprise's smtplib off the loopback listener."""
    with CountingListener("127.0.0.1") as listener:
        url = "mailto://user:pass@example.com?" + query.format(port=listener.port)
        ctx = ctx_with(world, STRICT, resolver=lying_resolver)
        outcome, row = deliver_once(world, "apprise", {"url": url}, ctx)
    assert listener.connections == 0
    assert (outcome.kind, outcome.permanent) == ("failed", True)
    assert row.state == "failed"
    assert row.lastError == "destination not allowed: 127.0.0.1 is loopback"


def test_apprise_mailto_smtp_parameter_is_refused_before_connect_by_the_check(
    world: World,
) -> None:
    with CountingListener("127.0.0.1") as listener:
        url = f"mailto://user:pass@example.com?smtp=127.0.0.1&port={listener.port}"
        outcome, row = deliver_once(world, "apprise", {"url": url}, ctx_with(world, STRICT))
    assert listener.connections == 0
    assert outcome.permanent and "127.0.0.1 is loopback" in (row.lastError or "")


def test_apprise_redirect_to_loopback_is_not_followed(world: World) -> None:
    """Row 43 for apprise: a 307 is a failure, the redirect target sees nothing."""
    with (
        CountingListener("127.0.0.1") as listener,
        LocalHTTPServer(
            "127.0.0.2", routes={"/n": redirect(f"http://127.0.0.1:{listener.port}/x", 307)}
        ) as lo2,
    ):
        outcome, row = deliver_once(
            world, "apprise", {"url": f"json://127.0.0.2:{lo2.port}/n"}, ctx_with(world, LO2)
        )
        assert lo2.hits["/n"] == 1
    assert listener.connections == 0
    assert outcome.kind == "failed" and row.state == "pending"


def test_a_plugin_that_follows_a_redirect_to_loopback_is_refused_at_connect() -> None:
    """Should a plugin follow redirects after all (``redirect=yes``, apprise's default),
    the follow-up connection is refused by the hook, also on apprise's worker pool."""
    with (
        CountingListener("127.0.0.1") as listener,
        LocalHTTPServer(
            "127.0.0.2", routes={"/n": redirect(f"http://127.0.0.1:{listener.port}/x", 307)}
        ) as lo2,
        outbound_guard(LO2) as guard,
    ):
        notifier = apprise.Apprise()
        notifier.add(f"json://127.0.0.2:{lo2.port}/n?redirect=yes&retry=0")
        assert not notifier.notify(body="hello", title="t", timeout=5)  # pool + context
        assert lo2.hits["/n"] == 1
    assert listener.connections == 0
    assert guard.refused == "destination not allowed: 127.0.0.1 is loopback"


def test_apprise_never_sends_through_an_environment_proxy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CountingListener("127.0.0.2") as proxy, LocalHTTPServer("127.0.0.2") as target:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        outcome, row = deliver_once(
            world, "apprise", {"url": f"json://127.0.0.2:{target.port}/n"}, ctx_with(world, LO2)
        )
        assert (proxy.connections, target.total_hits) == (0, 0)
    assert outcome.permanent and "HTTP_PROXY is set" in (row.lastError or "")


# -- row 63 / row 8: a DNS answer that changes between the check and the connect -----------


def test_smtp_channel_rebinding_is_refused_at_connect(
    world: World,
    smtp_lo2_lo3: tuple[SMTPHandler, CountingListener],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, lo3 = smtp_lo2_lo3
    dns = FakeDNS({"mail.rebind.test": ["127.0.0.2", "127.0.0.3"]}).install(monkeypatch)
    config = {
        "host": "mail.rebind.test",
        "port": lo3.port,
        "security": "none",
        "from": "newsmon@example.com",
        "to": ["reader@example.com"],
    }
    outcome, row = deliver_once(world, "email", config, ctx_with(world, LO2))
    assert dns.calls == ["mail.rebind.test", "mail.rebind.test"]  # check, then smtplib
    assert lo3.connections == 0 and handler.messages == []
    assert outcome.permanent and row.state == "failed"
    assert row.lastError == "destination not allowed: 127.0.0.3 is loopback"


def test_apprise_rebinding_is_refused_at_connect(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        LocalHTTPServer("127.0.0.2") as lo2,
        LocalHTTPServer("127.0.0.3", lo2.port) as lo3,
    ):
        FakeDNS({"hook.rebind.test": ["127.0.0.2", "127.0.0.3"]}).install(monkeypatch)
        url = f"json://hook.rebind.test:{lo2.port}/n"
        outcome, row = deliver_once(world, "apprise", {"url": url}, ctx_with(world, LO2))
        assert (lo2.total_hits, lo3.connections) == (0, 0)
    assert outcome.permanent
    assert row.lastError == "destination not allowed: 127.0.0.3 is loopback"


def test_row14_webhook_whose_dns_changed_since_create_is_refused_at_delivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        LocalHTTPServer("127.0.0.2", routes={"/h": Response()}) as lo2,
        LocalHTTPServer("127.0.0.3", lo2.port) as lo3,
    ):
        answers = iter([["127.0.0.2"], ["127.0.0.3"]])
        resolver = lambda host, port: next(answers)  # noqa: E731
        url = f"http://hook.rebind.test:{lo2.port}/h"
        secret = "whsec_" + "a" * 44
        check_target(
            "webhook", validate_config("webhook", {"url": url, "secret": secret}), LO2, resolver
        )
        ctx = SendContext(
            keyring=world.keyring, client=build_client(LO2, resolver=resolver), policy=LO2
        )
        outcome, row = deliver_once(world, "webhook", {"url": url, "secret": secret}, ctx)
        assert (lo2.total_hits, lo3.connections) == (0, 0)
    assert outcome.permanent and row.lastError == (
        "destination not allowed: 127.0.0.3 is loopback (resolved from hook.rebind.test)"
    )


def test_a_thread_started_without_the_scope_context_is_not_guarded() -> None:
    """Threads without the scope's context (a plain ``threading.Thread``) are not guarded:
    the guard follows contextvars, which is why apprise's context-copying pool matters."""
    results: list[bool] = []
    with CountingListener("127.0.0.1") as listener, outbound_guard(STRICT):

        def connect() -> None:
            socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
            results.append(True)

        thread = threading.Thread(target=connect)
        thread.start()
        thread.join()
    assert results == [True] and listener.connections == 1
