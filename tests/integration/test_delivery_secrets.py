"""What a failed send records about itself (row 58): apprise's lines of this send only,
never another thread's, and no secret of the channel in the record or the log."""

from __future__ import annotations

import logging
import threading

import pytest

from core.logs import APPRISE_LOGGER
from core.masking import LOG_REDACTOR
from tests.support.delivery import (  # noqa: F401  (world_fixture provides `world`)
    World,
    world_fixture,
)
from tests.support.http_server import LocalHTTPServer, Request, Response

TOPIC = "anothertenantstopic"


@pytest.fixture
def redacted_apprise_log() -> object:
    apprise_log = logging.getLogger(APPRISE_LOGGER)
    apprise_log.addFilter(LOG_REDACTOR)
    yield
    apprise_log.removeFilter(LOG_REDACTOR)


def test_apprise_error_text_holds_only_its_own_sends_lines(world: World) -> None:
    """Another send (another thread, maybe another tenant) logs through apprise while
    this one is in flight; none of its words reach this delivery's record."""

    def refuse(request: Request) -> Response:
        other = threading.Thread(
            target=logging.getLogger(APPRISE_LOGGER).warning,
            args=(f"Failed to send ntfy notification to topic '{TOPIC}'",),
        )
        other.start()
        other.join()
        return Response(500, b"{}")

    with LocalHTTPServer(routes={"/notify": refuse}) as server:
        world.channel("apprise", {"url": f"json://127.0.0.1:{server.port}/notify"})
        world.stories(1)
        [delivery_id] = world.plan()
        result = world.deliver(delivery_id)
    assert result.outcome is not None and result.outcome.kind == "failed"
    error = world.row(delivery_id).lastError or ""
    assert error.startswith("apprise: ") and "500" in error
    assert TOPIC not in error and "ntfy" not in error


@pytest.mark.usefixtures("redacted_apprise_log")
def test_apprise_lines_quoting_the_topic_are_redacted_in_record_and_log(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    topic = "lowercasetopicname"
    with LocalHTTPServer(routes={"/": Response(500, b"{}")}) as server:
        world.channel("apprise", {"url": f"ntfy://127.0.0.1:{server.port}/{topic}"})
        world.stories(1)
        [delivery_id] = world.plan()
        world.deliver(delivery_id)
        assert server.total_hits == 1
    error = world.row(delivery_id).lastError or ""
    assert "Failed to send ntfy notification to topic '****'" in error
    assert "topic '****'" in caplog.text
    assert topic not in error and topic not in caplog.text
