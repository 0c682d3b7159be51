"""The scale bench's local internet: a feed farm and a webhook receiver on loopback.

Feeds are served by a few uvicorn processes, each listening on many loopback addresses
(``127.1.x.y``): each address is one "host" to newsmon's per-host politeness, so the
farm looks like a few hundred sites rather than one server that politeness would hold
to one fetch a second. What each feed publishes is a pure function of its index, the
farm's epoch and the clock (:func:`newest_item`), so every farm process, the seeder
and the bench agree on it without talking to each other.

Feed profiles (:func:`profile`), by popularity rank (index 0 is followed most): the top
5% publish every 1-3 minutes, the next 25% every 5-30 minutes, the next 40% every 1-6
hours, the rest every 6-48 hours; sprinkled over all ranks, 3% answer slowly (3-12 s),
2% answer 500, 1% 404, 1% 429 with ``Retry-After``, 1% an HTML page, 1% are huge
(1,000 items with long summaries, ~0.6 MB), and 20% send ``Cache-Control: max-age``.
Every feed honours ``If-None-Match`` (304 while nothing new was published).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

#: Items in a normal feed document, and in a huge one.
FEED_ITEMS = 20
HUGE_ITEMS = 1000
#: Words in an item's title and summary (a huge feed's summaries are longer).
TITLE_WORDS = 8
SUMMARY_WORDS = 16
HUGE_SUMMARY_WORDS = 80
#: Size of the made-up vocabulary titles, summaries and queries draw from.
VOCABULARY_SIZE = 600
#: Feeds per loopback address ("host") on average.
FEEDS_PER_HOST = 40
#: Seconds a slow feed takes to answer, at least and at most.
SLOW_S = (3.0, 12.0)
#: ``Retry-After`` of a throttled feed, seconds.
THROTTLED_RETRY_AFTER_S = 900
#: ``Cache-Control: max-age`` of feeds that send one, seconds.
CACHE_MAX_AGE_S = 300
#: Share of feeds per misbehaviour (the rest are well-behaved), in this order.
KIND_SHARES = (
    ("slow", 0.03),
    ("error", 0.02),
    ("missing", 0.01),
    ("throttled", 0.01),
    ("html", 0.01),
    ("huge", 0.01),
)
#: Publishing gaps (seconds, low and high) by popularity: (share of feeds, gap range).
RATE_BANDS = (
    (0.05, (60, 180)),
    (0.25, (300, 1800)),
    (0.40, (3600, 6 * 3600)),
    (0.30, (6 * 3600, 48 * 3600)),
)

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Made-up words (``kamelo``), the same in every process."""
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < VOCABULARY_SIZE:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(3)))
    return tuple(sorted(words))


def _unit(*parts: int) -> float:
    """A deterministic number in [0, 1) from integers (stable across processes)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Profile:
    """How one feed behaves: its host, its mean publishing gap, its kind, its caching."""

    index: int
    host: int
    gap_s: float
    kind: str
    max_age: bool

    @property
    def items(self) -> int:
        return HUGE_ITEMS if self.kind == "huge" else FEED_ITEMS

    @property
    def serves_feed(self) -> bool:
        return self.kind in ("ok", "slow", "huge")


def host_count(feeds: int) -> int:
    return max(1, round(feeds / FEEDS_PER_HOST))


def host_address(host: int) -> str:
    """The loopback address of host number ``host`` (127.1.0.1, 127.1.0.2, ...)."""
    return f"127.1.{host // 250}.{host % 250 + 1}"


@cache
def profile(index: int, feeds: int) -> Profile:
    rng = random.Random(index * 7919 + 17)
    rank = index / feeds
    low, high = RATE_BANDS[-1][1]
    edge = 0.0
    for share, band in RATE_BANDS:
        edge += share
        if rank < edge:
            low, high = band
            break
    gap = low * (high / low) ** rng.random()  # log-uniform within the band
    draw, kind, edge = rng.random(), "ok", 0.0
    for name, share in KIND_SHARES:
        edge += share
        if draw < edge:
            kind = name
            break
    return Profile(index, rng.randrange(host_count(feeds)), gap, kind, rng.random() < 0.2)


def published_at(p: Profile, k: int, epoch: float) -> float:
    """When item ``k`` of the feed was published (epoch seconds): one per gap, jittered
    within it, so publication times only grow."""
    return epoch + p.gap_s * (k + 0.9 * _unit(p.index, k))


def newest_item(p: Profile, epoch: float, now: float) -> int:
    """Index of the newest item published by ``now`` (-1: none yet)."""
    k = int((now - epoch) // p.gap_s)
    while k >= 0 and published_at(p, k, epoch) > now:
        k -= 1
    return k


def item_words(p: Profile, k: int) -> tuple[str, str]:
    """Title and summary of item ``k``."""
    words = vocabulary()
    rng = random.Random(p.index * 1_000_003 + k)
    title = " ".join(rng.choice(words) for _ in range(TITLE_WORDS)).capitalize()
    count = HUGE_SUMMARY_WORDS if p.kind == "huge" else SUMMARY_WORDS
    summary = " ".join(rng.choice(words) for _ in range(count)) + "."
    return title, summary


def feed_path(index: int) -> str:
    return f"/f/{index}.xml"


def item_url(base: str, p: Profile, k: int) -> str:
    return f"{base}/a/{p.index}/{k}"


def etag(p: Profile, newest: int) -> str:
    return f'"{p.index}-{newest}"'


def render_feed(p: Profile, base: str, epoch: float, newest: int) -> bytes:
    """The RSS 2.0 document of the feed with ``newest`` as its newest item."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Feed {p.index}</title><link>{base}/</link><description>bench</description>",
    ]
    for k in range(newest, max(-1, newest - p.items), -1):
        title, summary = item_words(p, k)
        when = datetime.fromtimestamp(published_at(p, k, epoch), UTC)
        parts.append(
            f"<item><title>{title}</title><link>{item_url(base, p, k)}</link>"
            f"<description>{summary}</description>"
            f"<pubDate>{email.utils.format_datetime(when, usegmt=True)}</pubDate></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


# --- the farm's server ------------------------------------------------------------------


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FarmApp:
    """ASGI app of one farm process: serves every feed of the hosts it listens for,
    and ``/_stats`` (requests and bytes by kind and status)."""

    def __init__(self, feeds: int, epoch: float, ports: dict[int, int]) -> None:
        self.feeds = feeds
        self.epoch = epoch
        self.ports = ports
        self.stats: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/_stats":
            await _answer(send, 200, json.dumps(self.stats).encode(), [])
            return
        try:
            index = int(path.removeprefix("/f/").removesuffix(".xml"))
        except ValueError:
            index = -1
        if not 0 <= index < self.feeds:
            await _answer(send, 404, b"no such feed", [])
            return
        p = profile(index, self.feeds)
        status, body, headers = await self._feed(p, dict(scope["headers"]))
        self.stats[f"{p.kind}:{status}"] += 1
        self.stats["requests"] += 1
        self.stats["bytes"] += len(body)
        await _answer(send, status, body, headers)

    async def _feed(
        self, p: Profile, request_headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if p.kind == "error":
            return 500, b"internal error", []
        if p.kind == "missing":
            return 404, b"not found", []
        if p.kind == "throttled":
            return 429, b"slow down", [(b"retry-after", str(THROTTLED_RETRY_AFTER_S).encode())]
        if p.kind == "html":
            return (
                200,
                b"<!doctype html><html><body>Moved</body></html>",
                [(b"content-type", b"text/html")],
            )
        if p.kind == "slow":
            await asyncio.sleep(SLOW_S[0] + (SLOW_S[1] - SLOW_S[0]) * random.random())
        newest = newest_item(p, self.epoch, time.time())
        tag = etag(p, newest)
        headers = [(b"etag", tag.encode()), (b"content-type", b"application/rss+xml")]
        if p.max_age:
            headers.append((b"cache-control", f"max-age={CACHE_MAX_AGE_S}".encode()))
        if request_headers.get(b"if-none-match", b"").decode() == tag:
            return 304, b"", headers
        base = f"http://{host_address(p.host)}:{self.ports[p.host]}"
        return 200, render_feed(p, base, self.epoch, newest), headers


def bind(address: str, port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def serve_farm(feeds: int, epoch: float, hosts: list[int], ports_out: Any, ports_in: Any) -> None:
    """One farm process: bind a socket per host, report the ports, learn every host's
    port (items link to their own host's address) and serve until killed."""
    import uvicorn

    sockets = {host: bind(host_address(host)) for host in hosts}
    ports_out.put({host: sock.getsockname()[1] for host, sock in sockets.items()})
    app = FarmApp(feeds, epoch, ports_in.get())
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=list(sockets.values()))


# --- the webhook receiver ------------------------------------------------------------------


class ReceiverApp:
    """ASGI webhook receiver: notes when each delivered story arrived; ``/_records?from=N``
    returns ``[received, searchId, publishedAt]`` rows from the N-th on."""

    def __init__(self) -> None:
        self.records: list[tuple[float, str, str | None]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/_records":
            start = int(scope["query_string"].decode().removeprefix("from=") or 0)
            await _answer(send, 200, json.dumps(self.records[start:]).encode(), [])
            return
        received = time.time()
        try:
            digest = json.loads(body)["digest"]
            for story in digest["stories"]:
                self.records.append((received, digest["search"]["id"], story.get("publishedAt")))
        except (ValueError, KeyError, TypeError):
            await _answer(send, 400, b"bad payload", [])
            return
        await _answer(send, 200, b"ok", [])


def serve_receiver(ports_out: Any) -> None:
    import uvicorn

    sock = bind("127.0.0.1")
    ports_out.put(sock.getsockname()[1])
    config = uvicorn.Config(ReceiverApp(), log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
