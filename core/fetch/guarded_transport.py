"""The connect-time guard: resolve once, check every answer, connect only to a checked IP.

httpx hands the URL's host to httpcore, which would resolve it again inside
``socket.create_connection``; a DNS answer that changes between our check and that second
lookup (rebinding) would slip through. So the check lives in the httpcore network backend:
:class:`GuardedBackend` resolves the host once per connection with an injectable resolver,
refuses the host if any answer is refused, and hands httpcore's own backend the checked IP
*literal*. TLS still uses the host name for SNI and certificate checks (httpcore passes the
origin host to ``start_tls``), and httpx still sends the host name in ``Host``. The
checked addresses are then approved in the current outbound guard scope
(:mod:`core.fetch.outbound_guard`), whose audit hook sees the literal being dialled.

Every stream the backend returns also obeys the deadline set by :func:`deadline_scope`,
because httpx's read timeout restarts with every chunk and so cannot bound a trickle.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence

import httpcore
import httpx

from core.errors import FetchError
from core.fetch.address_policy import GuardPolicy, IPAddress, check_destination, check_port
from core.fetch.outbound_guard import approve

#: Connection pool size of one guarded client (per-host limits are the scheduler's job).
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: A resolver maps (host, port) to IP address strings; tests inject fakes.
Resolver = Callable[[str, int], Sequence[str]]

#: Monotonic time by which the current fetch must be done (``None``: no deadline).
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "newsmon_fetch_deadline", default=None
)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with ``getaddrinfo`` (numeric tricks like ``127.1`` resolve as the OS does)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def time_left() -> float | None:
    """Seconds left before the current deadline (negative once past); None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


@contextlib.contextmanager
def deadline_scope(deadline: float) -> Iterator[None]:
    """Make every connect, read and write in this context end by ``deadline`` (monotonic)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """Shorten ``timeout`` to what is left of the deadline; raise ``error`` if none is left."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("fetch deadline exceeded")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore backend that connects only to addresses the policy allows.

    Parameters:
      policy: the operator's rules (ports, allowlist).
      resolver: host name resolution, called once per new connection.
    """

    def __init__(self, policy: GuardPolicy, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or system_resolver
        self._inner = httpcore.SyncBackend()

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses of ``host``: an IP literal as is, a name through the resolver."""
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(host)]
        answers = self._resolver(host, port)
        try:
            addresses = [ipaddress.ip_address(a) for a in answers]
        except ValueError as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise FetchError(f"cannot resolve {host}: no addresses")
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        check_port(self._policy, port)
        addresses = self.resolve(host, port)
        check_destination(self._policy, host, addresses, port)
        approve(host, addresses, port)  # the audit hook lets these literals through
        last_error: Exception = FetchError(f"cannot connect to {host}")
        for ip in addresses:
            try:
                # An IP literal: create_connection's getaddrinfo does no DNS lookup here.
                stream = self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=_clamp(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            return DeadlineStream(stream)
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise FetchError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool dials through :class:`GuardedBackend`.

    Proxies are never used (there is no proxy parameter and the client sets
    ``trust_env=False``): a proxy would make the connect-time check meaningless.
    """

    def __init__(
        self,
        policy: GuardPolicy,
        *,
        resolver: Resolver | None = None,
        verify: bool = True,
        limits: httpx.Limits = POOL_LIMITS,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx 0.28 takes no network backend, so replace the pool it built with the same
        # pool dialling through the guard; handle_request() and close() only use _pool.
        # tests/integration/test_guarded_fetch.py fails loudly if that ever changes.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver),
        )
