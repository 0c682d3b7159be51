"""The early address check for senders whose library connects on its own (SMTP, apprise):
resolve the host and refuse it if any address is private, unless the operator allowlisted
it (the same :class:`~core.fetch.GuardPolicy` as for webhooks). Inside an outbound guard
scope the checked addresses are approved for the connect-time check, which the library's
own second lookup then meets (:mod:`core.fetch.outbound_guard`)."""

from __future__ import annotations

import ipaddress

from core.fetch import GuardPolicy, Resolver, approve, check_destination, system_resolver


def check_host(policy: GuardPolicy, host: str, port: int, resolver: Resolver | None = None) -> None:
    """Raise :class:`~core.errors.DestinationNotAllowed` if ``host`` may not be contacted;
    :class:`~core.errors.FetchError` if it does not resolve."""
    addresses = [
        ipaddress.ip_address(a) for a in (resolver or system_resolver)(host.strip("[]"), port)
    ]
    check_destination(policy, host, addresses, port)
    approve(host, addresses, port)
