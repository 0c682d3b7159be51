"""A channel test send holds a web worker, so it ends within one short deadline whatever
the channel type and however the target stalls: a local server that accepts and never
answers (HTTP, SMTP, apprise) cannot keep it for the senders' own, longer timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import core.delivery.deliveries as deliveries
from core.db.session import unit_of_work
from core.delivery.deliveries import SendContext, send_test_digest
from core.fetch import GuardPolicy, build_client
from tests.support import CountingListener, LocalHTTPServer, hang
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    SECRET,
    START,
    World,
    world_fixture,
)

#: The deadline these tests hold test sends to (the real one is a few seconds).
SHORT_S = 1.0
#: Scheduling slack on a loaded machine on top of the deadline.
SLACK_S = 1.5
#: Production-like timeouts, all far longer than the test send's deadline.
SLOW = GuardPolicy.from_allowlist(["127.0.0.1"], deadline_s=30, read_timeout_s=15)


@pytest.fixture(autouse=True)
def _short_test_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deliveries, "TEST_SEND_DEADLINE_S", SHORT_S)


@pytest.fixture
def silent_http() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer(raw={"/x": hang(30)}) as server:
        yield server


@pytest.fixture
def silent_smtp() -> Iterator[CountingListener]:
    """Accepts and never says a word (not even the SMTP greeting)."""
    with CountingListener(hold=True) as listener:
        yield listener


def email(port: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "newsmon@example.com",
        "to": ["reader@example.com"],
    }


CHANNELS: dict[str, Callable[[LocalHTTPServer, CountingListener], tuple[str, dict[str, Any]]]] = {
    "webhook": lambda http, smtp: ("webhook", {"url": http.url_for("/x"), "secret": SECRET}),
    "slack": lambda http, smtp: ("slack", {"url": http.url_for("/x")}),
    "email": lambda http, smtp: ("email", email(smtp.port)),
    "apprise json": lambda http, smtp: (
        "apprise",
        {"url": f"json://127.0.0.1:{http.port}/x?rto=30&cto=30"},
    ),
    "apprise mailto": lambda http, smtp: (
        "apprise",
        {"url": f"mailto://u:p@example.com?smtp=127.0.0.1&port={smtp.port}&to=r@example.com"},
    ),
}


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_test_send_to_a_silent_target_ends_by_the_short_deadline(
    world: World, silent_http: LocalHTTPServer, silent_smtp: CountingListener, kind: str
) -> None:
    type_, config = CHANNELS[kind](silent_http, silent_smtp)
    channel_id = world.channel(type_, config)
    ctx = SendContext(keyring=world.keyring, client=build_client(SLOW), policy=SLOW)
    started = time.monotonic()
    with unit_of_work(world.engine) as session:
        outcome = send_test_digest(session, world.org_id, channel_id, ctx, now=START)
    elapsed = time.monotonic() - started
    assert silent_http.total_hits + silent_smtp.connections == 1  # it did reach the target
    assert outcome.kind in ("failed", "unknown"), outcome
    assert elapsed < SHORT_S + SLACK_S, (elapsed, outcome)
