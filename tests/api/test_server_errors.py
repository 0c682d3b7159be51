"""An unexpected error is the API's JSON 500 with its ``x-request-id``, its traceback is
logged once with that id, and the client's keep-alive connection stays usable: a real
uvicorn server on 127.0.0.1, one httpx connection for every request."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from api.app import create_app
from core.config import Settings

#: Seconds the server may take to start or stop.
SERVER_WAIT_S = 10.0


@pytest.fixture
def base_url(pg_engine: Engine) -> Iterator[str]:
    app = create_app(Settings(), pg_engine)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:  # a route failing the way a bug would
        raise RuntimeError("something nobody expected")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_WAIT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(SERVER_WAIT_S)
    sock.close()


def _client_port(response: httpx.Response) -> int:
    """The local port of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    port: int = stream.get_extra_info("client_addr")[1]
    return port


def test_an_unexpected_error_is_a_json_500_on_a_connection_that_stays_open(
    base_url: str, caplog: pytest.LogCaptureFixture, tripwire: list[str]
) -> None:
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=base_url, limits=httpx.Limits(max_connections=1)) as client:
        failed = client.get("/boom")
        after = client.get("/healthz")
        again = client.get("/boom")
        ports = {_client_port(r) for r in (failed, after, again)}
    assert failed.status_code == 500
    request_id = failed.headers["x-request-id"]
    assert failed.json() == {
        "error": {
            "type": "internal_error",
            "message": f"internal error (request id {request_id})",
            "fields": [],
        }
    }
    assert "nobody expected" not in failed.text
    assert after.status_code == 200 and after.headers["x-request-id"]
    assert again.headers["x-request-id"] not in (request_id, after.headers["x-request-id"])
    assert len(ports) == 1  # the same connection carried all three
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 2  # one per failed request, none twice
    assert request_id in tracebacks[0].getMessage()
    assert "something nobody expected" in caplog.text
