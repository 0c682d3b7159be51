"""The connect-time guard of every socket newsmon opens while sending or fetching.

:class:`GuardedBackend` pins httpx to checked addresses, but smtplib, ``requests`` (which
apprise's plugins use) and anything else resolve host names again themselves and follow
their own redirects and host parameters (apprise's ``mailto://...?smtp=``). So the last
line is drawn where every library must pass: the interpreter's ``socket.connect``,
``socket.sendto`` and ``socket.sendmsg`` audit events (PEP 578), which carry the address
actually dialled. One process-wide audit hook (installed on first use; hooks cannot be
removed) checks that address against the :class:`GuardPolicy` of the current
:func:`outbound_guard` scope and raises :class:`~core.errors.ConnectNotAllowed`, an
``OSError`` the libraries surface as a failed connection, naming the policy's reason.

- The scope is a :mod:`contextvars` value, so it follows the code that opened it, into
  apprise's worker threads too (apprise submits with ``contextvars.copy_context()``);
  outside any scope the hook returns at once (database, Redis and web sockets are free).
- Inside a scope only IP literals of ``AF_INET``/``AF_INET6`` may be dialled: a host name
  handed to ``connect`` would be resolved inside the call, after the check, so it is
  refused, as are Unix and every other socket family.
- The hook sees IPs only, so an allowlisted *host name* (``GuardPolicy.allowed_hosts``)
  counts through :func:`approve`: a name-aware check (the guarded backend's, or
  :func:`~core.delivery.destination.check_host`'s) pins the addresses it validated for
  that name in the scope; a later answer of the same name (rebinding) is checked anew.
- Scopes nest: a connection must pass every active scope's policy.
- A thread started without the scope's context (a bare ``threading.Thread``) is not
  guarded; none of the supported apprise plugins starts one.
- Cost outside the guarded work is one Python call and a set lookup per audit event,
  about what any Python audit hook costs (``python -m bench.outbound_guard``).

Why an audit hook rather than wrapping ``socket.socket.connect`` (as the test suite's
tripwire does) or each library's connection factory: a wrapper is one attribute that
other code may replace or step around (``_socket``, a library's own factory, a plugin we
did not read), while the audit event is raised by the interpreter's C implementation of
every connect and datagram send, whoever calls it. The two coexist: the tripwire's
wrapper runs first, then the real connect raises the event.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from core.errors import ConnectNotAllowed, DestinationNotAllowed
from core.fetch.address_policy import GuardPolicy, IPAddress, check_destination, check_port

#: Audit events that carry the peer address of an outbound connection or datagram.
GUARDED_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
#: Socket families that may reach the network inside a scope.
IP_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})


class GuardScope:
    """One guarded piece of work: its policy, the addresses approved by name, refusals.

    Parameters:
      policy: the rules every connection in the scope must pass.
      parent: the scope this one is nested in (its rules apply too).
    """

    def __init__(self, policy: GuardPolicy, parent: GuardScope | None = None) -> None:
        self.policy = policy
        self.parent = parent
        self.approved: set[IPAddress] = set()
        #: Messages of the connections refused in this scope (shared with worker threads).
        self.refusals: list[str] = []

    @property
    def refused(self) -> str | None:
        """The first refusal's message, if any connection was refused."""
        return self.refusals[0] if self.refusals else None

    def check(self, ip: IPAddress, port: int) -> None:
        """Raise :class:`ConnectNotAllowed` unless this scope and its parents allow ``ip``."""
        scope: GuardScope | None = self
        while scope is not None:
            try:
                check_port(scope.policy, port)
                if ip not in scope.approved:
                    check_destination(scope.policy, str(ip), (ip,), port)
            except DestinationNotAllowed as exc:
                self.refuse(str(exc))
            scope = scope.parent

    def refuse(self, message: str) -> NoReturn:
        """Record the refusal and raise it as the error the connecting library sees."""
        self.refusals.append(message)
        raise ConnectNotAllowed(message)


_current: contextvars.ContextVar[GuardScope | None] = contextvars.ContextVar(
    "newsmon_outbound_guard", default=None
)
_installed = False
_install_lock = threading.Lock()


@contextlib.contextmanager
def outbound_guard(policy: GuardPolicy) -> Iterator[GuardScope]:
    """Check every connection made in this context (and threads it hands its context to)."""
    install()
    scope = GuardScope(policy, parent=_current.get())
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def current_scope() -> GuardScope | None:
    """The innermost active scope, if any."""
    return _current.get()


def approve(host: str, addresses: Iterable[IPAddress], port: int | None = None) -> None:
    """Pin ``addresses`` of ``host`` in every active scope after a name-aware check.

    Raises :class:`~core.errors.DestinationNotAllowed` if a scope's policy refuses them.
    Addresses allowed on ``port`` only (an ``IP:PORT`` allowlist entry) are not pinned:
    the connect-time check sees each connection's port and decides for it.
    Outside any scope this does nothing (channel checks at create time).
    """
    answers = tuple(addresses)
    scope = _current.get()
    while scope is not None:
        try:
            check_destination(scope.policy, host, answers)
            scope.approved.update(answers)
        except DestinationNotAllowed:
            if port is None:
                raise
            check_destination(scope.policy, host, answers, port)
        scope = scope.parent


def install() -> None:
    """Install the audit hook once per process."""
    global _installed  # noqa: PLW0603  (a process-wide, install-once switch)
    if _installed:
        return
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of the process: return as early as possible.
    if event not in GUARDED_EVENTS:
        return
    scope = _current.get()
    if scope is None:
        return
    sock, address = args[0], args[1]
    if address is None:
        return  # sendmsg on a connected socket: its connect was checked
    family = getattr(sock, "family", None)
    if family not in IP_FAMILIES:
        scope.refuse(f"destination not allowed: {_family_name(family)} sockets are not allowed")
    try:
        host, port = str(address[0]), int(address[1])
        ip = ipaddress.ip_address(host.partition("%")[0])
    except (TypeError, ValueError, IndexError):
        scope.refuse(
            f"destination not allowed: {address!r} is not an IP address "
            "(a name would be resolved after the check)"
        )
    else:
        scope.check(ip, port)


def _family_name(family: object) -> str:
    try:
        return socket.AddressFamily(family).name  # type: ignore[arg-type]
    except ValueError:
        return f"family {family}"
