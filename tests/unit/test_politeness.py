"""The per-host limiter: concurrency bound and spacing, per host, across threads."""

from __future__ import annotations

import itertools
import threading
import time

from core.fetch.politeness import HostLimiter


def test_starts_of_one_host_are_spaced_and_other_hosts_do_not_wait():
    limiter = HostLimiter(concurrency=4, interval_s=0.05)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    def fetch(host: str) -> None:
        with limiter.slot(host):
            starts[host].append(time.monotonic())

    threads = [threading.Thread(target=fetch, args=(h,)) for h in "aaab"]
    begun = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = sorted(starts["a"])
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(a))
    assert starts["b"][0] - begun < 0.04


def test_no_more_than_concurrency_in_flight_per_host():
    limiter = HostLimiter(concurrency=2, interval_s=0)
    lock, active, peak = threading.Lock(), [0], [0]

    def fetch() -> None:
        with limiter.slot("Example.ORG"):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.02)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2
