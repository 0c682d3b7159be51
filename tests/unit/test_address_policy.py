"""The address classifier and GuardPolicy checks (RELIABILITY rows 2-5, 7), no sockets."""

from __future__ import annotations

import ipaddress

import pytest

from core.errors import DestinationNotAllowed
from core.fetch.address_policy import (
    DEFAULT_MAX_REDIRECTS,
    GuardPolicy,
    check_destination,
    check_port,
    classify,
)

ip = ipaddress.ip_address

DENIED = [
    # row 3: cloud metadata
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    # row 4: embedded and special forms
    ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1 (loopback)"),
    ("::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254 (cloud metadata)"),
    ("::ffff:8.8.8.8", "IPv4-mapped 8.8.8.8 (public)"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254 (cloud metadata)"),
    ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1 (loopback)"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:a9fe:a9fe::1", "6to4 of 169.254.169.254 (cloud metadata)"),
    ("2002:7f00:1::", "6to4 of 127.0.0.1 (loopback)"),
    ("2002:a00:1::1", "6to4 of 10.0.0.1 (private)"),
    ("::127.0.0.1", "IPv4-compatible 127.0.0.1 (loopback)"),
    ("::10.0.0.1", "IPv4-compatible 10.0.0.1 (private)"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    # row 2/5 and the usual ranges
    ("127.0.0.1", "loopback"),
    ("127.0.0.3", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("0.1.2.3", "'this network'"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private (unique local)"),
    ("fd12:3456::1", "private (unique local)"),
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.254", "shared address space (CGNAT)"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.8", "reserved (IETF protocol assignments)"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "reserved (6to4 relay anycast)"),
    ("100::1", "discard-only"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.32.0.1",  # just outside 172.16/12
    "100.128.0.1",  # just outside 100.64/10
    "169.253.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), DENIED)
def test_classifier_denies_with_a_named_reason(address: str, reason: str) -> None:
    assert classify(ip(address)) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_classifier_allows_public_addresses(address: str) -> None:
    assert classify(ip(address)) is None


LOOPBACK_ONLY = GuardPolicy.from_allowlist(["127.0.0.1"])


def test_allowlist_of_one_address_allows_only_that_address() -> None:
    check_destination(LOOPBACK_ONLY, "127.0.0.1", [ip("127.0.0.1")])
    with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.2 is loopback"):
        check_destination(LOOPBACK_ONLY, "127.0.0.2", [ip("127.0.0.2")])


def test_allowlisted_v4_does_not_allow_its_ipv4_mapped_form() -> None:
    with pytest.raises(DestinationNotAllowed, match=r"IPv4-mapped 127\.0\.0\.1"):
        check_destination(LOOPBACK_ONLY, "::ffff:127.0.0.1", [ip("::ffff:127.0.0.1")])


def test_production_policy_refuses_every_denied_address() -> None:
    for address, reason in DENIED:
        with pytest.raises(DestinationNotAllowed, match="destination not allowed") as caught:
            check_destination(GuardPolicy(), address, [ip(address)])
        assert reason in str(caught.value)


def test_mixed_answers_refuse_the_whole_host() -> None:
    policy = GuardPolicy.from_allowlist(["127.0.0.2"])
    with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.3 is loopback \(resolved from"):
        check_destination(policy, "mixed.test", [ip("127.0.0.2"), ip("127.0.0.3")])
    with pytest.raises(DestinationNotAllowed, match=r"10\.0\.0\.1 is private"):
        check_destination(GuardPolicy(), "mixed.test", [ip("8.8.8.8"), ip("10.0.0.1")])


def test_metadata_via_resolver_is_refused_under_the_hosts_name() -> None:
    with pytest.raises(DestinationNotAllowed, match=r"cloud metadata.*metadata\.test"):
        check_destination(GuardPolicy(), "metadata.test", [ip("169.254.169.254")])


def test_allowed_host_name_allows_its_private_addresses_case_insensitively() -> None:
    policy = GuardPolicy.from_allowlist(["Intranet.Example.", "10.1.0.0/16"])
    check_destination(policy, "intranet.example", [ip("10.9.9.9")])
    check_destination(policy, "other.example", [ip("10.1.2.3")])
    with pytest.raises(DestinationNotAllowed):
        check_destination(policy, "other.example", [ip("10.2.0.1")])


def test_port_policy_is_off_by_default_and_strict_when_set() -> None:
    check_port(GuardPolicy(), 6379)
    strict = GuardPolicy(allowed_ports=frozenset({80, 443}))
    check_port(strict, 443)
    for port in (6379, 5432):
        with pytest.raises(DestinationNotAllowed, match=f"port {port} is not allowed"):
            check_port(strict, port)


def test_policy_defaults_and_validation() -> None:
    policy = GuardPolicy()
    assert policy.max_redirects == DEFAULT_MAX_REDIRECTS == 5
    assert policy.user_agent.startswith("newsmon/0.1 (+")
    assert policy.replace(deadline_s=1.0).deadline_s == 1.0
    with pytest.raises(ValueError, match="positive"):
        GuardPolicy(deadline_s=0)


def test_allowlist_entry_with_a_port_allows_that_port_of_that_address_only() -> None:
    policy = GuardPolicy.from_allowlist(["127.0.0.1:8123", "[::1]:8124"])
    loopback, v6 = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    check_destination(policy, "127.0.0.1", [loopback], 8123)
    check_destination(policy, "::1", [v6], 8124)
    for ip, port in ((loopback, 8124), (loopback, None), (v6, 8123)):
        with pytest.raises(DestinationNotAllowed, match="loopback"):
            check_destination(policy, str(ip), [ip], port)
    assert policy.allowed_networks == () and policy.allowed_hosts == frozenset()
