"""The one HTTP client of newsmon: :func:`build_client` and :meth:`GuardedClient.fetch`.

A fetch follows redirects itself (httpx's ``follow_redirects`` is off) so that every hop
gets the scheme check, the redirect limit and a fresh connect-time address check, and it
reads the body under one deadline and one byte cap. It runs inside an outbound guard
scope too (:mod:`core.fetch.outbound_guard`), and an outer deadline (a channel test
send's) shortens its own.

The cap applies to the *decoded* body, and we decode gzip/deflate ourselves with zlib's
``max_length``: httpx's decoder inflates each 64 KiB network chunk whole, which for a gzip
bomb of zeros is ~64 MB per chunk. Decoding into at most ``cap + 1`` bytes keeps peak
memory near twice the cap (body plus one piece) whatever the compression ratio.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType

import httpx

from core.errors import DestinationNotAllowed, FetchError
from core.fetch.address_policy import GuardPolicy
from core.fetch.guarded_transport import (
    GuardedTransport,
    Resolver,
    deadline_scope,
    time_left,
)
from core.fetch.outbound_guard import outbound_guard

#: Schemes a fetch may use; anything else is refused before any I/O.
ALLOWED_SCHEMES = frozenset({"http", "https"})
#: Content encodings we can decode under the cap (and therefore the only ones we accept).
ACCEPT_ENCODING = "gzip, deflate"
#: Statuses whose ``Location`` is followed.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Request headers never carried to another origin on a redirect.
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
#: Media types that plausibly hold a feed besides ``*xml`` and ``*json`` ones.
FEED_MEDIA_TYPES = frozenset({"text/plain", "application/octet-stream"})
#: A socket timeout this close to the deadline is reported as the deadline.
_DEADLINE_SLACK_S = 0.05
#: Parsed addresses kept (channels' and sources'): parsing one cost ~2% of a delivery.
PARSED_URLS = 4096


@dataclass(frozen=True)
class FetchResult:
    """What a fetch returns: the final response, its decoded body and how we got there."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    elapsed_s: float
    redirects: tuple[str, ...] = ()

    @property
    def content_type(self) -> str | None:
        value: str | None = self.headers.get("content-type")
        return value


def looks_like_feed(content_type: str | None) -> bool:
    """Say whether a ``Content-Type`` plausibly holds a feed (XML, RSS, Atom, JSON, text).

    A missing type is plausible (many feeds are served without one); HTML is not.
    """
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.endswith(("/xml", "+xml", "/json", "+json")) or media in FEED_MEDIA_TYPES or not media
    )


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore ``Set-Cookie``."""


class _CookielessClient(httpx.Client):
    """httpx's client without a cookie jar: one client serves every organization's
    fetches and sends, so a cookie one host set for one of them would go back to that
    host with another's requests."""

    _jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the outbound client keeps no cookies")


class GuardedClient:
    """An httpx client behind the address guard, with a deadline, a byte cap and redirects.

    Parameters:
      policy: the operator's rules; see :class:`~core.fetch.address_policy.GuardPolicy`.
      resolver: DNS resolution, called once per new connection (tests inject fakes).
    """

    def __init__(self, policy: GuardPolicy, *, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self._client = _CookielessClient(
            transport=GuardedTransport(policy, resolver=resolver),
            trust_env=False,  # HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE, .netrc: all ignored
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=policy.connect_timeout_s,
                read=policy.read_timeout_s,
                write=policy.read_timeout_s,
                pool=policy.connect_timeout_s,
            ),
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )

    def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = True,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """Send one request and read the whole response under the policy's limits.

        Any status is returned (callers handle 304, 429, 5xx); refusals, timeouts, oversized
        bodies and transport failures raise :class:`~core.errors.FetchError`.
        """
        started = time.monotonic()
        budget = self.policy.deadline_s
        left = time_left()  # an outer deadline (a channel test send's) may be shorter
        if left is not None:
            budget = min(budget, left)
        deadline = started + budget
        cap = self.policy.max_body_bytes if max_bytes is None else max_bytes
        hop = _checked_url(url)
        redirects: list[str] = []
        request_headers = dict(headers or {})
        with outbound_guard(self.policy) as guard, deadline_scope(deadline):
            while True:
                try:
                    request = self._client.build_request(
                        method, hop, headers=request_headers, content=content
                    )
                    response = self._client.send(request, stream=True)
                    try:
                        location = response.headers.get("location")
                        redirected = response.status_code in REDIRECT_STATUSES and location
                        if not (follow_redirects and redirected):
                            body = _read_body(response, hop.host, cap, deadline, budget)
                            return FetchResult(
                                url=str(hop),
                                status=response.status_code,
                                headers=response.headers,
                                body=body,
                                elapsed_s=time.monotonic() - started,
                                redirects=tuple(redirects),
                            )
                    finally:
                        response.close()
                except FetchError:
                    raise
                except httpx.HTTPError as exc:
                    if guard.refused:  # the audit hook refused a socket httpx opened
                        raise DestinationNotAllowed(guard.refused) from exc
                    raise _as_fetch_error(exc, hop.host, deadline, budget, self.policy) from exc
                if len(redirects) >= self.policy.max_redirects:
                    raise FetchError(
                        f"too many redirects (more than {self.policy.max_redirects}) "
                        f"starting at {_checked_url(url).host}"
                    )
                redirects.append(str(hop))
                target = _checked_url(str(location), base=hop)
                method, content, request_headers = _redirected_request(
                    response.status_code,
                    method=method,
                    content=content,
                    headers=request_headers,
                    source=hop,
                    target=target,
                )
                hop = target

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_client(policy: GuardPolicy, *, resolver: Resolver | None = None) -> GuardedClient:
    """The one way to build an outbound HTTP client; reuse it, it pools connections."""
    return GuardedClient(policy, resolver=resolver)


def fetch(
    url: str,
    *,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = True,
) -> FetchResult:
    """One fetch with a throw-away client (prefer a long-lived :func:`build_client`)."""
    with build_client(policy, resolver=resolver) as client:
        return client.fetch(
            url,
            method=method,
            headers=headers,
            content=content,
            follow_redirects=follow_redirects,
        )


@lru_cache(maxsize=PARSED_URLS)
def _parsed(url: str) -> httpx.URL:
    """``url`` parsed: a channel's or a feed's address is parsed once, not on every
    request (httpx URLs are immutable, so one may serve every thread)."""
    return httpx.URL(url)


def _checked_url(url: str, *, base: httpx.URL | None = None) -> httpx.URL:
    """Parse ``url`` (relative to ``base``, a redirect) and refuse non-http(s) schemes."""
    redirect = base is not None
    try:
        parsed = base.join(url) if base is not None else _parsed(url)
    except httpx.InvalidURL as exc:
        raise FetchError(f"invalid URL: {exc}") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        what = "redirect to" if redirect else "scheme"
        raise DestinationNotAllowed(
            f"destination not allowed: {what} {parsed.scheme or 'relative'!r} URL "
            "(only http and https)"
        )
    if not parsed.host:
        raise FetchError("invalid URL: no host")
    return parsed


def _redirected_request(
    status: int,
    *,
    method: str,
    content: bytes | None,
    headers: dict[str, str],
    source: httpx.URL,
    target: httpx.URL,
) -> tuple[str, bytes | None, dict[str, str]]:
    """Method, body and headers of the next hop, as browsers (and httpx) do it."""
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method, content = "GET", None
        headers = {k: v for k, v in headers.items() if not k.lower().startswith("content-")}
    same_origin = (source.scheme, source.host, source.port) == (
        target.scheme,
        target.host,
        target.port,
    )
    if not same_origin:
        headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    return method, content, headers


def _read_body(
    response: httpx.Response, host: str, cap: int, deadline: float, budget_s: float
) -> bytes:
    """Read and decode the body, failing past ``cap`` decoded bytes or past the deadline."""
    decoder = _CappedDecoder(response.headers.get("content-encoding", ""), cap, host)
    declared = response.headers.get("content-length", "")
    if decoder.identity and declared.isdigit() and int(declared) > cap:
        # An honest length tells us now; do not read a byte of a body we would throw away.
        raise FetchError(f"{host}: response too large ({declared} bytes, limit {cap})")
    body = bytearray()
    for raw in response.iter_raw():
        body += decoder.feed(raw)
        if time.monotonic() > deadline:
            raise FetchError(f"{host}: deadline of {budget_s:.3g} s exceeded")
    body += decoder.flush()
    return bytes(body)


class _CappedDecoder:
    """Decode a body (identity, gzip or deflate) into at most ``cap`` bytes."""

    def __init__(self, content_encoding: str, cap: int, host: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(f"{host}: unsupported content-encoding {content_encoding!r}")
        self.coding = codings[0] if codings else ""
        self.identity = not codings
        self._cap, self._host, self._total = cap, host, 0
        self._started = False
        self._zlib = self._decompressor()

    def _decompressor(self, raw_deflate: bool = False) -> zlib._Decompress:
        if self.coding == "deflate":
            return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS | 16)

    def _count(self, piece: bytes) -> bytes:
        self._total += len(piece)
        if self._total > self._cap:
            raise FetchError(f"{self._host}: response too large (over {self._cap} bytes)")
        return piece

    def feed(self, data: bytes) -> bytes:
        if self.identity:
            return self._count(data)
        pieces: list[bytes] = []
        while data:
            try:
                # max_length cap+1-total: one byte over the cap is proof enough to abort.
                piece = self._zlib.decompress(data, self._cap - self._total + 1)
            except zlib.error as exc:
                if self.coding == "deflate" and not self._started:
                    # "deflate" is zlib-wrapped by the RFC but raw in some servers.
                    self._started, self._zlib = True, self._decompressor(raw_deflate=True)
                    continue
                raise FetchError(f"{self._host}: corrupt {self.coding} body: {exc}") from None
            self._started = True
            pieces.append(self._count(piece))
            if self._zlib.eof:  # a gzip file may hold several members
                data = self._zlib.unused_data
                if data:
                    self._zlib = self._decompressor()
            else:
                data = self._zlib.unconsumed_tail
        return b"".join(pieces)

    def flush(self) -> bytes:
        return b"" if self.identity else self._count(self._zlib.flush())


def _as_fetch_error(
    exc: httpx.HTTPError, host: str, deadline: float, budget_s: float, policy: GuardPolicy
) -> FetchError:
    """The one place httpx errors become one-line :class:`FetchError` messages."""
    if isinstance(exc, httpx.TimeoutException):
        if time.monotonic() >= deadline - _DEADLINE_SLACK_S:
            problem = f"deadline of {budget_s:.3g} s exceeded"
        elif isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            problem = f"connect timeout after {policy.connect_timeout_s:g} s"
        else:
            problem = f"read timeout after {policy.read_timeout_s:g} s"
    elif isinstance(exc, httpx.ConnectError):
        problem = f"connection failed: {exc}"
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        problem = f"HTTP protocol error: {exc}"
    else:
        problem = f"{type(exc).__name__}: {exc}"
    return FetchError(f"{host}: {problem}")
