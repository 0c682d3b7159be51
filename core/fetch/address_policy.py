"""What the guard lets newsmon contact: the address classifier and the operator's policy.

Pure code, no I/O. :func:`classify` says why an IP address must not be contacted (or
``None`` for a public address); :func:`check_destination` applies a :class:`GuardPolicy`
(the operator's allowlist) to every answer of one resolution and raises
:class:`~core.errors.DestinationNotAllowed` if any answer is refused.

The table below names the ranges we refuse on purpose so that error messages say *why*;
behind it, :mod:`ipaddress` (the IANA special-purpose registries) catches whatever is not
globally routable, so a range we forgot is still refused, only with a vaguer reason.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import DestinationNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Largest decoded (decompressed) response body we accept: a big feed is ~1-3 MB.
MAX_FEED_BYTES = 10 * 1024 * 1024
#: Wall-clock budget for one fetch, all redirect hops and the whole body included.
FETCH_DEADLINE_S = 30.0
#: Budget for one TCP (and TLS) connect.
CONNECT_TIMEOUT_S = 5.0
#: Longest silence tolerated between two reads from the server.
READ_TIMEOUT_S = 15.0
#: Redirects followed before a fetch fails with "too many redirects".
DEFAULT_MAX_REDIRECTS = 5
#: Sent with every request so that publishers can tell who is fetching and why.
DEFAULT_USER_AGENT = "newsmon/0.1 (+https://newsmon.invalid/bot)"
#: Cloud metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba): named apart
#: from link-local/CGNAT because reaching them leaks credentials.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

_net = ipaddress.ip_network

#: Ranges refused with a named reason, checked in order (first match wins).
DENIED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = (
    (_net("0.0.0.0/32"), "unspecified"),
    (_net("::/128"), "unspecified"),
    (_net("0.0.0.0/8"), "'this network'"),
    (_net("127.0.0.0/8"), "loopback"),
    (_net("::1/128"), "loopback"),
    (_net("10.0.0.0/8"), "private"),
    (_net("172.16.0.0/12"), "private"),
    (_net("192.168.0.0/16"), "private"),
    (_net("fc00::/7"), "private (unique local)"),
    (_net("169.254.0.0/16"), "link-local"),
    (_net("fe80::/10"), "link-local"),
    (_net("fec0::/10"), "site-local"),
    (_net("100.64.0.0/10"), "shared address space (CGNAT)"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("ff00::/8"), "multicast"),
    (_net("255.255.255.255/32"), "broadcast"),
    (_net("240.0.0.0/4"), "reserved"),
    (_net("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_net("192.0.2.0/24"), "documentation"),
    (_net("198.51.100.0/24"), "documentation"),
    (_net("203.0.113.0/24"), "documentation"),
    (_net("2001:db8::/32"), "documentation"),
    (_net("3fff::/20"), "documentation"),
    (_net("198.18.0.0/15"), "benchmarking"),
    (_net("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (_net("2001::/32"), "Teredo"),
    (_net("64:ff9b:1::/48"), "local-use NAT64"),
    (_net("100::/64"), "discard-only"),
)

#: ``ipaddress`` properties that refuse an address the table above did not name.
_STDLIB_CHECKS = (
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "not globally routable"),
)
_IPV4_COMPATIBLE = _net("::/96")
_NAT64 = _net("64:ff9b::/96")


def classify(ip: IPAddress) -> str | None:
    """Say why ``ip`` must not be contacted ("loopback", ...), or ``None`` if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_reason(ip)
        if embedded is not None:
            return embedded or None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    for network, reason in DENIED_NETWORKS:
        if ip in network:
            return reason
    # The stdlib's registries are the safety net for anything not named above.
    for attribute, reason in _STDLIB_CHECKS:
        if getattr(ip, attribute):
            return reason
    return None if ip.is_global else "not globally routable"


def _embedded_reason(ip: ipaddress.IPv6Address) -> str | None:
    """Judge IPv6 forms that carry an IPv4 address: a reason, ``""`` (allowed) or ``None``.

    ``None`` means "not such a form, carry on with the table".
    """
    mapped = ip.ipv4_mapped
    if mapped is not None:
        # A v6 socket connecting to ::ffff:a.b.c.d reaches a.b.c.d; no public DNS answer
        # needs this form, so it is refused whatever it embeds.
        return f"IPv4-mapped {mapped} ({classify(mapped) or 'public'})"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        compatible = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        return f"IPv4-compatible {compatible} ({classify(compatible) or 'public'})"
    if ip.teredo is not None:
        return "Teredo"
    # 6to4 and NAT64 are legitimate transition forms: refuse only what they embed.
    v4 = ip.sixtofour
    kind = "6to4"
    if v4 is None and ip in _NAT64:
        v4, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if v4 is None:
        return None
    reason = classify(v4)
    return f"{kind} of {v4} ({reason})" if reason else ""


@dataclass(frozen=True)
class GuardPolicy:
    """The operator's rules for outbound requests; built from settings by the caller.

    Parameters:
      allowed_networks: addresses allowed even though :func:`classify` refuses them.
      allowed_hosts: host names (as written in URLs) whose every address is allowed.
      allowed_ports: ports that may be contacted; ``None`` allows any port.
      allowed_endpoints: (address, port) pairs allowed on that port only.
      max_redirects: redirects followed before "too many redirects".
      connect_timeout_s: budget of one connect; read_timeout_s: longest silence.
      deadline_s: wall-clock budget of a whole fetch, redirects and body included.
      max_body_bytes: cap on the decoded body.
      user_agent: the ``User-Agent`` header sent.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    allowed_ports: frozenset[int] | None = None
    allowed_endpoints: frozenset[tuple[IPAddress, int]] = frozenset()
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S
    deadline_s: float = FETCH_DEADLINE_S
    max_body_bytes: int = MAX_FEED_BYTES
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        hosts = frozenset(_normal_host(h) for h in self.allowed_hosts)
        object.__setattr__(self, "allowed_hosts", hosts)
        if self.max_redirects < 0 or self.max_body_bytes < 0:
            raise ValueError("max_redirects and max_body_bytes must not be negative")
        if min(self.connect_timeout_s, self.read_timeout_s, self.deadline_s) <= 0:
            raise ValueError("timeouts and deadline must be positive")

    @classmethod
    def from_allowlist(cls, entries: Iterable[str], **overrides: Any) -> GuardPolicy:
        """Build a policy from allowlist entries: IPs or CIDR ranges, ``IP:PORT`` (or
        ``[IPv6]:PORT``) for one port of one address, else host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        endpoints: set[tuple[IPAddress, int]] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            endpoint = _endpoint(entry)
            if endpoint is not None:
                endpoints.add(endpoint)
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(
            allowed_networks=tuple(networks),
            allowed_hosts=frozenset(hosts),
            allowed_endpoints=frozenset(endpoints),
            **overrides,
        )

    def replace(self, **changes: Any) -> GuardPolicy:
        """A copy with some fields changed (tests shorten deadlines this way)."""
        return dataclasses.replace(self, **changes)


def check_port(policy: GuardPolicy, port: int) -> None:
    """Refuse ``port`` unless the policy allows it."""
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise DestinationNotAllowed(f"destination not allowed: port {port} is not allowed")


def check_destination(
    policy: GuardPolicy, host: str, addresses: Iterable[IPAddress], port: int | None = None
) -> None:
    """Refuse ``host`` if ANY of its resolved ``addresses`` is refused (mixed => refused);
    an ``IP:PORT`` allowlist entry counts only when ``port`` is given and matches."""
    if _normal_host(host) in policy.allowed_hosts:
        return
    for ip in addresses:
        if any(ip in network for network in policy.allowed_networks):
            continue
        if port is not None and (ip, port) in policy.allowed_endpoints:
            continue
        reason = classify(ip)
        if reason is not None:
            named = "" if _normal_host(host) == str(ip) else f" (resolved from {host})"
            raise DestinationNotAllowed(f"destination not allowed: {ip} is {reason}{named}")


def _endpoint(entry: str) -> tuple[IPAddress, int] | None:
    """``(address, port)`` of an ``IP:PORT`` / ``[IPv6]:PORT`` entry, else None."""
    address, colon, port = entry.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        return ipaddress.ip_address(address.removeprefix("[").removesuffix("]")), int(port)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()
