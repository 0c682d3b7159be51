"""Quick side-by-side: core.feeds.parse_feed vs plain feedparser.parse over the corpus.

Run: .venv/bin/python bench/parse_quick.py [corpus_dir] [rounds]
Prints seconds per round for each and the ratio (plain / ours; > 1 means ours is faster).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from core.feeds import FeedParseError, parse_feed

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds"


def _plain(bodies: list[bytes]) -> None:
    for body in bodies:
        feedparser.parse(io.BytesIO(body))


def _ours(bodies: list[bytes]) -> None:
    for body in bodies:
        with contextlib.suppress(FeedParseError):
            parse_feed(body, {}, "https://example.org/feed")


def _best(fn: Callable[[list[bytes]], None], bodies: list[bytes], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(bodies)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CORPUS
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    files = sorted(p for p in corpus.iterdir() if p.name != "MANIFEST.tsv")
    bodies = [p.read_bytes() for p in files]
    _ours(bodies)  # warm imports and caches for both
    _plain(bodies)
    plain = _best(_plain, bodies, rounds)
    ours = _best(_ours, bodies, rounds)
    print(f"{len(bodies)} files, best of {rounds}")
    print(f"plain feedparser.parse: {plain:.3f} s")
    print(f"core.feeds.parse_feed:  {ours:.3f} s")
    print(f"ratio: {plain / ours:.2f}x")


if __name__ == "__main__":
    main()
