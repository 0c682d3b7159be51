"""A local HTTP server for tests: scripted routes, raw socket handlers, files, hit counters.

::

    with LocalHTTPServer(routes={"/feed": Response(body=b"<rss/>")}) as server:
        httpx.get(server.url_for("/feed"))
        assert server.hits["/feed"] == 1

Binds to one loopback host (``127.0.0.1`` by default, also ``127.0.0.x`` or ``::1``) on an
ephemeral port (or a given one, e.g. the same port on two hosts). Every response closes
its connection, so ``connections`` counts requests that reached the server. Handler threads
are daemons and raw handlers that wait use :meth:`RawConnection.sleep`, which returns early
when the server closes, so ``close()`` never hangs on a test that hangs on purpose.
"""

from __future__ import annotations

import collections
import contextlib
import mimetypes
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType


@dataclass(frozen=True)
class Request:
    """What a handler sees of a request; header names are lower-case."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """A scripted response; ``Content-Length`` is added unless headers say otherwise."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RawConnection:
    """The socket of one request, for handlers that misbehave on purpose."""

    def __init__(self, request: Request, sock: socket.socket, stopping: threading.Event):
        self.request = request
        self.sock = sock
        self._stopping = stopping

    def send(self, data: bytes) -> bool:
        """Send ``data``; ``False`` once the client has gone away."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; ``False`` (early) if the server is closing."""
        return not self._stopping.wait(seconds)


Handler = Callable[[Request], Response]
RawHandler = Callable[[RawConnection], None]


class LocalHTTPServer:
    """A threaded HTTP server on a loopback address, as a context manager.

    Parameters:
      host: address to bind (``127.0.0.1``, ``127.0.0.2``, ``::1``, ...).
      port: port to bind; 0 picks a free one.
      routes: path -> handler (or a fixed :class:`Response`).
      raw: path -> raw handler writing bytes to the socket itself.
      directory: files served for paths without a route.
      tls: a server-side TLS context: the server speaks HTTPS.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        routes: Mapping[str, Handler | Response] | None = None,
        raw: Mapping[str, RawHandler] | None = None,
        directory: Path | str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.routes: dict[str, Handler | Response] = dict(routes or {})
        self.raw: dict[str, RawHandler] = dict(raw or {})
        self.directory = Path(directory) if directory is not None else None
        self.hits: collections.Counter[str] = collections.Counter()
        self.requests: list[Request] = []
        self.connections = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        server_class = _IPv6Server if ":" in host else _IPv4Server
        self._server = server_class((host, port), _Handler)
        self._server.owner = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` or ``http://[::1]:41234``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url_for(self, path: str) -> str:
        return self.url + path

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, request: Request | None) -> None:
        with self._lock:
            if request is None:
                self.connections += 1
            else:
                self.hits[request.path] += 1
                self.requests.append(request)


class _IPv4Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LocalHTTPServer


class _IPv6Server(_IPv4Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _IPv4Server

    def setup(self) -> None:
        super().setup()
        self.server.owner._record(None)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def _dispatch(self) -> None:
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        owner._record(request)
        self.close_connection = True
        if path in owner.raw:
            owner.raw[path](RawConnection(request, self.connection, owner.stopping))
            return
        route = owner.routes.get(path)
        if route is None:
            response = self._file(owner.directory, path)
        else:
            response = route if isinstance(route, Response) else route(request)
        self._send(response, head=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _file(self, directory: Path | None, path: str) -> Response:
        if directory is None:
            return Response(404, b"not found")
        target = (directory / path.lstrip("/")).resolve()
        if not target.is_relative_to(directory.resolve()) or not target.is_file():
            return Response(404, b"not found")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(200, target.read_bytes(), {"Content-Type": kind})

    def _send(self, response: Response, *, head: bool) -> None:
        self.send_response(response.status)
        names = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "content-length" not in names and "transfer-encoding" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            # The client may abort on purpose (byte cap, deadline).
            with contextlib.suppress(OSError):
                self.wfile.write(response.body)


def redirect(location: str, status: int = 302) -> Response:
    """A redirect response to ``location``."""
    return Response(status, b"", {"Location": location})


def hang(seconds: float = 30.0) -> RawHandler:
    """Accept the request, never answer (until ``seconds`` pass or the server closes)."""

    def handler(conn: RawConnection) -> None:
        conn.sleep(seconds)

    return handler


def trickle(body: bytes, interval: float, *, headers_too: bool = False) -> RawHandler:
    """Send ``body`` one byte per ``interval`` (optionally the status line and headers too)."""

    def handler(conn: RawConnection) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        data = head + body
        start = 0 if headers_too else len(head)
        if start and not conn.send(head):
            return
        for i in range(start, len(data)):
            if not conn.send(data[i : i + 1]) or not conn.sleep(interval):
                return

    return handler


def raw_response(
    head: bytes, chunks: Iterable[bytes], *, chunked: bool = False, pause: float = 0.0
) -> RawHandler:
    """Send ``head`` (status line and headers, no blank line) then ``chunks``.

    With ``chunked`` each piece is framed as an HTTP chunk. Lying ``Content-Length``
    values and endless bodies (pass a generator) are the point.
    """

    def handler(conn: RawConnection) -> None:
        extra = b"Transfer-Encoding: chunked\r\n" if chunked else b""
        if not conn.send(head.rstrip(b"\r\n") + b"\r\n" + extra + b"Connection: close\r\n\r\n"):
            return
        for chunk in chunks:
            data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            if not conn.send(data) or (pause and not conn.sleep(pause)):
                return
        if chunked:
            conn.send(b"0\r\n\r\n")

    return handler


class CountingListener:
    """A TCP listener that counts connections and closes them (a fake proxy, a fake Redis),
    or with ``hold`` keeps them open and silent until it stops (a server that never
    answers, not even a greeting)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, hold: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._hold = hold
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._hold:
                self._held.append(conn)
            else:
                conn.close()

    def __enter__(self) -> CountingListener:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._sock.close()
