"""Reusable test helpers (local servers); fixtures live in ``conftest.py`` files."""

from tests.support.http_server import (
    CountingListener,
    LocalHTTPServer,
    RawConnection,
    Request,
    Response,
    hang,
    raw_response,
    redirect,
    trickle,
)

__all__ = [
    "CountingListener",
    "LocalHTTPServer",
    "RawConnection",
    "Request",
    "Response",
    "hang",
    "raw_response",
    "redirect",
    "trickle",
]
