"""The guarded client against real local servers (RELIABILITY rows 1-13, 20-24).

Every test runs under the tripwire: a connect to anything outside 127.0.0.0/8 and ::1
raises, and every connect attempt is recorded so "zero connect attempts" is checkable.
"""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest
import redis

import core.fetch
from core.errors import DestinationNotAllowed, FetchError
from core.fetch import GuardPolicy, build_client, fetch, looks_like_feed
from tests.support import (
    CountingListener,
    LocalHTTPServer,
    Request,
    Response,
    hang,
    raw_response,
    redirect,
    trickle,
)
from tests.support.services import REDIS_HOST, REDIS_PORT, require_service

#: Production rules, with timeouts short enough for a test run.
PROD = GuardPolicy(connect_timeout_s=2, read_timeout_s=2, deadline_s=5)
LO1 = PROD.replace(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
LO2 = PROD.replace(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))
CAP = 64 * 1024

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.fixture(autouse=True)
def _tripwire_on(tripwire: list[str]) -> list[str]:
    """Every test of this module runs under the tripwire (see tests/conftest.py)."""
    return tripwire


class FakeResolver:
    """Answers from a table: host -> successive answers (the last one repeats)."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table[host]
        return answers[min(self.calls.count(host), len(answers)) - 1]


@pytest.fixture
def lo1() -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def lo2_lo3() -> Iterator[tuple[LocalHTTPServer, LocalHTTPServer]]:
    """Servers on 127.0.0.2 (allowed by LO2) and 127.0.0.3 (denied) on the same port."""
    with LocalHTTPServer("127.0.0.2") as lo2, LocalHTTPServer("127.0.0.3", lo2.port) as lo3:
        lo3.routes["/"] = lo3.routes["/feed"] = Response(body=b"lo3 must never answer")
        yield lo2, lo3


# -- the happy path ------------------------------------------------------------------------


def test_allowlisted_fetch_returns_status_headers_body_and_user_agent(lo1) -> None:
    lo1.routes["/feed"] = Response(body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})
    result = fetch(lo1.url_for("/feed"), policy=LO1.replace(user_agent="newsmon/0.1 (+test)"))
    assert (result.status, result.body, result.url) == (200, b"<rss/>", lo1.url_for("/feed"))
    assert result.content_type == "application/rss+xml"
    assert result.redirects == () and 0 < result.elapsed_s < 2
    assert lo1.requests[0].headers["user-agent"] == "newsmon/0.1 (+test)"


def test_error_statuses_are_returned_not_raised(lo1) -> None:
    lo1.routes["/gone"] = Response(410, b"gone")
    assert fetch(lo1.url_for("/gone"), policy=LO1).status == 410


def test_webhook_post_sends_method_headers_and_body_and_can_refuse_redirects(lo1) -> None:
    lo1.routes["/hook"] = redirect("/elsewhere")
    result = fetch(
        lo1.url_for("/hook"),
        policy=LO1,
        method="POST",
        headers={"Content-Type": "application/json", "webhook-id": "msg_1"},
        content=b'{"a": 1}',
        follow_redirects=False,
    )
    assert result.status == 302 and lo1.hits["/elsewhere"] == 0
    sent = lo1.requests[0]
    assert (sent.method, sent.body, sent.headers["webhook-id"]) == ("POST", b'{"a": 1}', "msg_1")


def test_a_cookie_set_by_one_response_is_never_sent_back(lo1) -> None:
    """One client serves every organization: a host's cookie must not ride along with
    the next request, whoever makes it."""
    lo1.routes["/hook"] = Response(headers={"Set-Cookie": "session=tenant-a; Path=/"})
    with build_client(LO1) as client:
        client.fetch(lo1.url_for("/hook"), method="POST", content=b"{}")
        client.fetch(lo1.url_for("/hook"), method="POST", content=b"{}")
    assert [r.headers.get("cookie") for r in lo1.requests] == [None, None]


def test_redirect_chain_is_followed_and_recorded(lo1) -> None:
    lo1.routes.update({"/a": redirect("/b", 301), "/b": redirect("/c", 308)})
    lo1.routes["/c"] = Response(body=b"done")
    result = fetch(lo1.url_for("/a"), policy=LO1)
    assert result.body == b"done" and result.url == lo1.url_for("/c")
    assert result.redirects == (lo1.url_for("/a"), lo1.url_for("/b"))


def test_post_redirected_by_303_becomes_get_and_credentials_stay_on_their_origin(
    lo1, lo2_lo3
) -> None:
    lo2, _ = lo2_lo3
    lo1.routes["/hook"] = Response(303, headers={"Location": lo2.url_for("/after")})
    lo2.routes["/after"] = Response(body=b"ok")
    policy = LO1.replace(allowed_networks=LO1.allowed_networks + LO2.allowed_networks)
    result = fetch(
        lo1.url_for("/hook"),
        policy=policy,
        method="POST",
        headers={"Authorization": "Bearer secret"},
        content=b"x",
    )
    assert result.body == b"ok"
    followed = lo2.requests[0]
    assert followed.method == "GET" and "authorization" not in followed.headers


@pytest.mark.parametrize("encoding", ["gzip", "deflate-zlib", "deflate-raw"])
def test_compressed_bodies_are_decoded(lo1, encoding: str) -> None:
    text = b"<rss>" + b"news " * 1000 + b"</rss>"
    body = {
        "gzip": gzip.compress(text),
        "deflate-zlib": zlib.compress(text),
        "deflate-raw": zlib.compress(text, wbits=-15),
    }[encoding]
    name = encoding.split("-", maxsplit=1)[0]
    lo1.routes["/z"] = Response(body=body, headers={"Content-Encoding": name})
    assert fetch(lo1.url_for("/z"), policy=LO1).body == text


def test_content_type_sanity_helper() -> None:
    for plausible in (None, "", "application/rss+xml", "application/atom+xml; charset=utf-8",
                      "text/xml", "application/xml", "application/feed+json",
                      "application/json", "text/plain", "application/octet-stream"):  # fmt: skip
        assert looks_like_feed(plausible), plausible
    for implausible in ("text/html; charset=utf-8", "image/png", "application/pdf"):
        assert not looks_like_feed(implausible), implausible


def test_package_exports_exactly_its_public_api() -> None:
    assert all(hasattr(core.fetch, name) for name in core.fetch.__all__)
    assert sorted(core.fetch.__all__) == sorted(set(core.fetch.__all__))


# -- rows 1-8: where a connection may go -----------------------------------------------------


def test_row1_loopback_is_refused_before_connect(lo1, tripwire) -> None:
    with pytest.raises(DestinationNotAllowed, match=r"destination not allowed: 127\.0\.0\.1 is"):
        fetch(lo1.url_for("/"), policy=PROD)
    assert lo1.connections == 0 and tripwire == []


def test_row2_name_resolving_to_private_address_gets_zero_connect_attempts(tripwire) -> None:
    resolver = FakeResolver({"feed.test": [["10.0.0.1"]]})
    with pytest.raises(DestinationNotAllowed, match=r"10\.0\.0\.1 is private \(resolved from"):
        fetch("http://feed.test/rss", policy=PROD, resolver=resolver)
    assert resolver.calls == ["feed.test"] and tripwire == []


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"])
def test_row3_metadata_addresses_are_refused_literal_and_resolved(address, tripwire) -> None:
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationNotAllowed, match="cloud metadata"):
        fetch(f"http://{literal}/latest/meta-data/", policy=PROD)
    resolver = FakeResolver({"metadata.test": [[address]]})
    with pytest.raises(DestinationNotAllowed, match="cloud metadata"):
        fetch("http://metadata.test/", policy=PROD, resolver=resolver)
    assert tripwire == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "127.1", "0"])
def test_row5_numeric_host_tricks_are_resolved_and_refused(lo1, host: str) -> None:
    with pytest.raises(DestinationNotAllowed, match=r"(127\.0\.0\.1 is loopback|0\.0\.0\.0 is)"):
        fetch(f"http://{host}:{lo1.port}/", policy=PROD)  # the real getaddrinfo
    assert lo1.connections == 0


def test_row6_ipv6_loopback_is_refused() -> None:
    with LocalHTTPServer("::1") as v6:
        with pytest.raises(DestinationNotAllowed, match=r"::1 is loopback"):
            fetch(v6.url_for("/"), policy=LO1)
        assert v6.connections == 0


def test_allowlisting_127_0_0_1_refuses_127_0_0_2_and_its_mapped_form(lo1, lo2_lo3) -> None:
    lo2, _ = lo2_lo3
    with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.2 is loopback"):
        fetch(lo2.url_for("/"), policy=LO1)
    with pytest.raises(DestinationNotAllowed, match=r"IPv4-mapped 127\.0\.0\.1"):
        fetch(f"http://[::ffff:127.0.0.1]:{lo1.port}/", policy=LO1)
    assert lo1.connections == lo2.connections == 0
    assert fetch(lo1.url_for("/"), policy=LO1).status == 404  # the allowed one works


def test_row7_mixed_answers_refuse_the_whole_host(lo2_lo3) -> None:
    lo2, lo3 = lo2_lo3
    resolver = FakeResolver({"mixed.test": [["127.0.0.2", "127.0.0.3"]]})
    with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.3 is loopback"):
        fetch(f"http://mixed.test:{lo2.port}/feed", policy=LO2, resolver=resolver)
    assert lo2.connections == lo3.connections == 0


def test_row8_dns_rebinding_connects_only_to_the_validated_ip(lo2_lo3) -> None:
    lo2, lo3 = lo2_lo3
    lo2.routes["/feed"] = Response(body=b"lo2 feed")
    resolver = FakeResolver({"rebind.test": [["127.0.0.2"], ["127.0.0.3"]]})
    url = f"http://rebind.test:{lo2.port}/feed"
    with build_client(LO2, resolver=resolver) as client:
        assert client.fetch(url).body == b"lo2 feed"
        # The server closed the connection, so the next fetch dials (and checks) anew.
        with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.3 is loopback"):
            client.fetch(url)
    assert resolver.calls == ["rebind.test", "rebind.test"]  # once per connection
    assert lo3.connections == 0
    assert lo2.requests[0].headers["host"] == f"rebind.test:{lo2.port}"  # Host kept


# -- rows 9-13: redirects, schemes, ports, proxies -------------------------------------------


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://lo3.test:{port}/feed", r"127\.0\.0\.3 is loopback \(resolved from lo3\.test\)"),
        ("http://169.254.169.254/latest/meta-data/", r"169\.254\.169\.254 is cloud metadata"),
        ("http://[::ffff:a9fe:a9fe]/", r"IPv4-mapped 169\.254\.169\.254"),
    ],
)
def test_row9_redirect_to_a_denied_destination_is_refused(lo2_lo3, tripwire, target, reason):
    lo2, lo3 = lo2_lo3
    lo2.routes["/go"] = redirect(target.format(port=lo2.port))
    resolver = FakeResolver({"lo2.test": [["127.0.0.2"]], "lo3.test": [["127.0.0.3"]]})
    with pytest.raises(DestinationNotAllowed, match=reason):
        fetch(f"http://lo2.test:{lo2.port}/go", policy=LO2, resolver=resolver)
    assert lo2.hits["/go"] == 1 and lo3.connections == 0
    assert set(tripwire) == {"127.0.0.2"}


def test_row10_redirect_loop_fails_with_too_many_redirects(lo2_lo3) -> None:
    lo2, _ = lo2_lo3
    lo2.routes["/loop"] = redirect("/loop")
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)"):
        fetch(lo2.url_for("/loop"), policy=LO2)
    assert lo2.hits["/loop"] == 6 and time.monotonic() - started < 2


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://127.0.0.1/x", "data:,hi"]
)
def test_row11_non_http_schemes_are_refused_before_any_io(url: str, tripwire) -> None:
    with pytest.raises(DestinationNotAllowed, match="only http and https"):
        fetch(url, policy=LO1)
    assert tripwire == []


def test_row11_redirect_to_file_scheme_is_refused(lo1) -> None:
    lo1.routes["/go"] = redirect("file:///etc/passwd")
    with pytest.raises(DestinationNotAllowed, match="redirect to 'file'"):
        fetch(lo1.url_for("/go"), policy=LO1)


def test_row12_port_policy_refuses_before_connect(lo1) -> None:
    with CountingListener("127.0.0.1") as fake_redis:
        policy = LO1.replace(allowed_ports=frozenset({80, 443, lo1.port}))
        with pytest.raises(DestinationNotAllowed, match=f"port {fake_redis.port} is not allowed"):
            fetch(fake_redis.url, policy=policy)
        assert fetch(lo1.url_for("/"), policy=policy).status == 404
    assert fake_redis.connections == 0


@pytest.mark.redis
def test_row12_real_redis_sees_no_connection() -> None:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        before = client.info("stats")["total_connections_received"]
        policy = LO1.replace(allowed_ports=frozenset({80, 443}))
        with pytest.raises(DestinationNotAllowed, match=f"port {REDIS_PORT} is not allowed"):
            fetch(f"http://{REDIS_HOST}:{REDIS_PORT}/", policy=policy)
        assert client.info("stats")["total_connections_received"] == before
    finally:
        client.close()


def test_row13_proxy_environment_is_ignored(lo1, monkeypatch) -> None:
    with CountingListener("127.0.0.1") as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        # Control: a default httpx client does go through the proxy listener.
        with pytest.raises(httpx.HTTPError):
            httpx.get(lo1.url_for("/"))
        time.sleep(0.1)
        assert proxy.connections == 1
        assert fetch(lo1.url_for("/"), policy=LO1).status == 404
        time.sleep(0.1)
        assert proxy.connections == 1 and lo1.connections == 1


# -- rows 20-24: size and time ---------------------------------------------------------------

CAPPED = LO1.replace(max_body_bytes=CAP)


def test_row20_honest_length_over_cap_is_refused_before_reading_body(lo1) -> None:
    # Headers now, the body only after 5 s: a client that reads the body would wait.
    lo1.raw["/big"] = raw_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10000000", [b"", b"x" * 1000], pause=5
    )
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"too large \(10000000 bytes, limit 65536\)"):
        fetch(lo1.url_for("/big"), policy=CAPPED)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_row21_endless_body_without_length_is_cut_at_cap(lo1, chunked: bool) -> None:
    lo1.raw["/endless"] = raw_response(
        b"HTTP/1.1 200 OK", itertools.repeat(b"x" * 16384), chunked=chunked
    )
    with pytest.raises(FetchError, match=r"too large \(over 65536 bytes\)"):
        fetch(lo1.url_for("/endless"), policy=CAPPED)


def test_row21_lying_short_length_never_yields_more_than_it_claims(lo1) -> None:
    lo1.raw["/lie"] = raw_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100", itertools.repeat(b"x" * 16384, 64)
    )
    assert len(fetch(lo1.url_for("/lie"), policy=CAPPED).body) == 100


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """~2 MB of gzip expanding to 2 GiB of zeros (32 members of 64 MiB each)."""
    return gzip.compress(bytes(64 << 20), compresslevel=9) * 32


def test_row22_gzip_bomb_is_cut_at_decoded_cap_with_bounded_memory(lo1, gzip_bomb) -> None:
    cap = 1 << 20
    lo1.routes["/bomb"] = Response(
        body=gzip_bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"}
    )
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"too large \(over 1048576 bytes\)"):
            fetch(lo1.url_for("/bomb"), policy=LO1.replace(max_body_bytes=cap))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * cap, f"peak {peak} bytes"


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_row23_trickle_is_cut_at_the_overall_deadline(lo1, headers_too: bool) -> None:
    lo1.raw["/trickle"] = trickle(b"x" * 100, 0.25, headers_too=headers_too)
    policy = LO1.replace(deadline_s=1.5, read_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"deadline of 1\.5 s exceeded"):
        fetch(lo1.url_for("/trickle"), policy=policy)
    assert 1.4 <= time.monotonic() - started < 2.2


def test_row24_silent_server_hits_the_read_timeout(lo1) -> None:
    lo1.raw["/hang"] = hang()
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"read timeout after 0\.5 s"):
        fetch(lo1.url_for("/hang"), policy=LO1.replace(read_timeout_s=0.5))
    assert 0.4 <= time.monotonic() - started < 1.5


def test_row24_silent_server_is_cut_by_a_deadline_shorter_than_the_read_timeout(lo1) -> None:
    lo1.raw["/hang"] = hang()
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"deadline of 0\.5 s exceeded"):
        fetch(lo1.url_for("/hang"), policy=LO1.replace(deadline_s=0.5, read_timeout_s=5))
    assert time.monotonic() - started < 1.5


def test_scripted_handlers_see_the_request(lo1) -> None:
    seen: list[Request] = []

    def echo(request: Request) -> Response:
        seen.append(request)
        return Response(body=request.query.encode())

    lo1.routes["/echo"] = echo
    assert fetch(lo1.url_for("/echo?q=1"), policy=LO1).body == b"q=1"
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_allowlisted_port_reaches_that_server_and_no_other_port_of_its_address(tripwire) -> None:
    with LocalHTTPServer("127.0.0.1") as allowed, LocalHTTPServer("127.0.0.1") as other:
        other.routes["/"] = Response(body=b"must never answer")
        policy = GuardPolicy.from_allowlist(
            [f"127.0.0.1:{allowed.port}"], connect_timeout_s=2, read_timeout_s=2, deadline_s=5
        )
        allowed.routes["/"] = redirect(other.url_for("/"))
        with pytest.raises(DestinationNotAllowed, match=r"127\.0\.0\.1 is loopback"):
            fetch(allowed.url_for("/"), policy=policy)  # the redirect hop to the other port
        assert allowed.connections == 1 and other.connections == 0
        with pytest.raises(DestinationNotAllowed):
            fetch(other.url_for("/"), policy=policy)
        assert other.connections == 0
