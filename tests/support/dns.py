"""A fake DNS at the outside edge: ``socket.getaddrinfo`` answering some names from a table.

Every library resolves through ``socket.getaddrinfo`` (smtplib and ``requests`` via
``socket.create_connection`` and urllib3, newsmon's own ``system_resolver``), so patching
it is how a test makes a name answer differently at check time and at connect time
(rebinding) or point a service's fixed public host at a local server.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo


class FakeDNS:
    """Answers each listed name with its next answer (the last one repeats); an answer is
    ``"ip"`` or ``("ip", port)`` (a port redirects the service's fixed port to a test
    server's). Other names go to the real resolver.

    Parameters:
      table: name -> successive answers.
    """

    def __init__(self, table: dict[str, Sequence[str | tuple[str, int]]]) -> None:
        self.table = {name.lower(): list(answers) for name, answers in table.items()}
        self.calls: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
        monkeypatch.setattr(socket, "getaddrinfo", self)
        return self

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        answers = self.table.get(name.lower().rstrip("."))
        if answers is None:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.calls.append(name)
        answer = answers[min(self.calls.count(name), len(answers)) - 1]
        ip, real_port = answer if isinstance(answer, tuple) else (answer, int(port or 0))
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        address = (ip, real_port, 0, 0) if family == socket.AF_INET6 else (ip, real_port)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
