"""The address check for senders that do not go through the guarded HTTP client
(SMTP, apprise): resolve the host and refuse it if any address is private, unless the
operator allowlisted it (the same :class:`~core.fetch.GuardPolicy` as for webhooks)."""

from __future__ import annotations

import ipaddress

from core.fetch import GuardPolicy, Resolver, check_destination, system_resolver


def check_host(policy: GuardPolicy, host: str, port: int, resolver: Resolver | None = None) -> None:
    """Raise :class:`~core.errors.DestinationNotAllowed` if ``host`` may not be contacted;
    :class:`~core.errors.FetchError` if it does not resolve."""
    addresses = (resolver or system_resolver)(host.strip("[]"), port)
    check_destination(policy, host, [ipaddress.ip_address(a) for a in addresses])
