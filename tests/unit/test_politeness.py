"""Per-host politeness in one process: concurrency bound and spacing, per host, across
threads; a host busy beyond the patience is reported, not waited for."""

from __future__ import annotations

import itertools
import threading
import time

from core.fetch.politeness import Busy, HostLimiter, take_slot


def test_starts_of_one_host_are_spaced_and_other_hosts_do_not_wait():
    limiter = HostLimiter(concurrency=4, interval_s=0.2)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    def fetch(host: str) -> None:
        with take_slot(limiter, host, patience_s=5) as busy:
            assert busy is None
            starts[host].append(time.monotonic())

    threads = [threading.Thread(target=fetch, args=(h,)) for h in "aaab"]
    begun = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = sorted(starts["a"])
    # Granted 0.2 s apart; read here after the grant, so allow for thread scheduling.
    assert all(later - earlier >= 0.15 for earlier, later in itertools.pairwise(a))
    assert starts["b"][0] - begun < 0.1


def test_no_more_than_concurrency_in_flight_per_host():
    limiter = HostLimiter(concurrency=2, interval_s=0)
    lock, active, peak = threading.Lock(), [0], [0]

    def fetch() -> None:
        with take_slot(limiter, "Example.ORG", patience_s=5) as busy:
            assert busy is None
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


def test_a_host_busy_beyond_the_patience_is_reported_without_waiting():
    limiter = HostLimiter(concurrency=1, interval_s=30)
    with take_slot(limiter, "news.example", patience_s=1) as first:
        assert first is None
    started = time.monotonic()
    with take_slot(limiter, "news.example", patience_s=1) as second:
        assert isinstance(second, Busy) and 29 < second.wait_s <= 30
    # not even the 1 s of patience: there is no point waiting when the wait is 30 s
    assert time.monotonic() - started < 0.9
    with take_slot(limiter, "other.example", patience_s=1) as other:
        assert other is None  # other hosts are not held up


def test_a_slot_is_given_back_when_the_block_raises():
    limiter = HostLimiter(concurrency=1, interval_s=0)
    try:
        with take_slot(limiter, "h", patience_s=0) as busy:
            assert busy is None
            raise RuntimeError("fetch failed")
    except RuntimeError:
        pass
    with take_slot(limiter, "h", patience_s=0) as again:
        assert again is None
