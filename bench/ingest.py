"""Ingest benchmark: the full path against plain feedparser, and local fetch throughput.

Run: ``.venv/bin/python -m bench.ingest [--rounds 5] [--feeds 1000]``

1. On the corpus (../shared/corpus/feeds, else tests/fixtures/feeds), in one run: entries/s
   of the full ingest path (``parse_feed``: parse, strip HTML, canonicalize; then
   ``store_entries``: dedupe and insert into a fresh PostgreSQL database) against plain
   ``feedparser.parse`` of the same bytes. The ratio is plain time / our time over the
   same documents (> 1: ours is faster); entries/s are printed too, but ours counts the
   JSON feeds feedparser cannot read. Best of N rounds;
   each round stores into new source rows, so every insert is real. The same full path
   with every XML feed read by feedparser (no fast path) runs beside them, and the
   share of documents the fast path takes is printed.
2. Peak RSS of this process (one worker's share of the work).
3. Fetch throughput through the guarded client: N feeds on 127.0.0.1 answered 200 (a
   small feed), then the same N answered 304 to a conditional GET, 8 threads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import feedparser
from sqlalchemy.orm import Session

from core.db.models import Source
from core.db.session import make_engine
from core.feeds import FeedParseError, parse_feed
from core.feeds.fast_xml import read_plain_feed
from core.feeds.parse import without_leading_space
from core.fetch import GuardPolicy, build_client
from core.ids import new_id
from core.ingest.entries import store_entries
from tests.support import LocalHTTPServer, Request, Response
from tests.support.databases import fresh_pg_database

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "feeds"
FALLBACK = ROOT / "tests" / "fixtures" / "feeds"
#: Threads fetching at once in the throughput part (a worker's default is 4).
FETCH_THREADS = 8


def load_corpus() -> list[bytes]:
    folder = CORPUS if CORPUS.is_dir() else FALLBACK
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix not in (".tsv", ".md")]


def plain(bodies: list[bytes]) -> int:
    return sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in bodies)


def full_path(bodies: list[bytes], engine_url: str, fast_path: bool = True) -> int:
    engine = make_engine(engine_url)
    now = datetime.now(UTC)
    entries = 0
    with Session(engine) as session, session.begin():
        for body in bodies:
            source = Source(id=new_id(), url=f"https://bench.invalid/{new_id()}", type="feed")
            session.add(source)
            session.flush()
            with contextlib.suppress(FeedParseError):
                feed = parse_feed(body, {}, source.url, fast_path=fast_path)
                entries += len(feed.entries)
                store_entries(session, source.id, feed, now)
    engine.dispose()
    return entries


def taken_by_fast_path(body: bytes) -> bool:
    body, headers = without_leading_space(body), {"content-type": "application/xml"}
    return read_plain_feed(body, headers, "https://bench.invalid/") is not None


def best(rounds: int, fn: object, *args: object) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        count = fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times), count


def fetch_throughput(feeds: int) -> tuple[float, float]:
    body = (FALLBACK / "rsparser-ranchero-manton.rss").read_bytes()

    def handler(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body=body, headers={"ETag": '"v1"', "Content-Type": "application/xml"})

    routes = {f"/feed/{i}": handler for i in range(feeds)}
    rates = []
    with (
        LocalHTTPServer(routes=routes) as server,
        build_client(GuardPolicy.from_allowlist(["127.0.0.1"])) as client,
    ):
        urls = [server.url_for(path) for path in routes]
        for headers in ({}, {"If-None-Match": '"v1"'}):
            start = time.perf_counter()
            with ThreadPoolExecutor(FETCH_THREADS) as pool:
                statuses = list(
                    pool.map(lambda u, h=headers: client.fetch(u, headers=h).status, urls)
                )
            rates.append(feeds / (time.perf_counter() - start))
            assert set(statuses) == ({304} if headers else {200}), set(statuses)
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--feeds", type=int, default=1000)
    args = parser.parse_args()
    bodies = load_corpus()
    # Rounds alternate plain and full path so both see the same machine load; the
    # ratio reported is the median of the per-round ratios.
    plain_times, ours_times, ratios, reference_ratios = [], [], [], []
    plain_n = ours_n = 0
    with fresh_pg_database() as url:
        for _ in range(args.rounds):
            plain_s, plain_n = best(1, plain, bodies)
            ours_s, ours_n = best(1, full_path, bodies, url)
            reference_s, _ = best(1, full_path, bodies, url, False)
            plain_times.append(plain_s)
            ours_times.append(ours_s)
            ratios.append(plain_s / ours_s)
            reference_ratios.append(plain_s / reference_s)
    plain_s, ours_s = min(plain_times), min(ours_times)
    plain_rate, ours_rate = plain_n / plain_s, ours_n / ours_s
    print(f"corpus: {len(bodies)} documents, {sum(map(len, bodies)) / 1e6:.1f} MB")
    print(f"plain feedparser.parse:          {plain_n} entries, {plain_rate:8.0f} entries/s")
    print(f"full ingest path (to PostgreSQL): {ours_n} entries, {ours_rate:8.0f} entries/s")
    # Same bytes both sides; ours also reads the JSON feeds feedparser skips, so compare
    # the time per corpus (entries/s would flatter us).
    print(f"per corpus (best of {args.rounds}): plain {plain_s:.2f} s, full path {ours_s:.2f} s; "
          f"ratio plain/full (median of rounds): {statistics.median(ratios):.2f}x")  # fmt: skip
    xml = [body for body in bodies if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"{"]
    taken = sum(1 for body in xml if taken_by_fast_path(body))
    print(f"fast path took {taken} of {len(xml)} XML documents; the same full path with "
          f"feedparser for all of them: {statistics.median(reference_ratios):.2f}x")  # fmt: skip
    ok, not_modified = fetch_throughput(args.feeds)
    print(f"fetch {args.feeds} feeds on 127.0.0.1, {FETCH_THREADS} threads: "
          f"200: {ok:.0f} req/s, 304: {not_modified:.0f} req/s")  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this worker process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
