"""Per-host politeness: at most ``concurrency`` fetches of a host in flight, their starts
at least ``interval_s`` apart, across every worker process.

Many sources share a host (every Google News query is ``news.google.com``), so a refresh
first takes a slot of its host. :class:`RedisHostLimiter` keeps the slots in Redis (one
Lua script per attempt, Redis's own clock), so the bound holds across processes and
machines; :class:`HostLimiter` keeps them in the process (the embedded system is one
process). A slot is held at most ``hold_s``: one whose holder died frees itself.

Taking a slot never blocks a worker thread for long: :func:`take_slot` waits up to a
small ``patience`` and otherwise answers how long the host is busy, so the caller
defers the refresh (the source becomes due again then) instead of parking a thread
that other hosts' refreshes need.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

#: Fetches of one host in flight at once (``NEWSMON_FETCH_HOST_CONCURRENCY``).
DEFAULT_HOST_CONCURRENCY = 2
#: Seconds between the starts of two fetches of one host (``..._HOST_INTERVAL_SECONDS``).
DEFAULT_HOST_INTERVAL_S = 1.0
#: Seconds a slot is held at most (a fetch's deadline is 30 s); then it frees itself.
DEFAULT_HOLD_S = 60.0
#: Seconds a refresh waits for its host's slot before it defers instead.
DEFAULT_PATIENCE_S = 2.0
#: Seconds to wait before asking again for a slot of a host whose slots are all taken.
FULL_RETRY_S = 0.05


class Limiter(Protocol):
    """Hands out host slots: a token, or how many seconds until one may be free."""

    def try_acquire(self, host: str) -> str | float: ...

    def release(self, host: str, token: str) -> None: ...


@dataclass(frozen=True)
class Busy:
    """The host had no slot within the patience: ask again after ``wait_s``."""

    wait_s: float


@contextmanager
def take_slot(
    limiter: Limiter,
    host: str,
    *,
    patience_s: float = DEFAULT_PATIENCE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Busy | None]:
    """Hold a slot of ``host`` for the block (yields ``None``), or yield :class:`Busy`
    when none came within ``patience_s`` (the block then must not fetch)."""
    host = host.lower()
    give_up = clock() + patience_s
    while True:
        got = limiter.try_acquire(host)
        if isinstance(got, str):
            break
        left = give_up - clock()
        if got > left:
            yield Busy(got)
            return
        sleep(max(got, 0.001))
    try:
        yield None
    finally:
        limiter.release(host, got)


class HostLimiter:
    """Slots of this process only (the embedded system).

    Parameters:
      concurrency: fetches of one host in flight at once.
      interval_s: seconds between the starts of two fetches of one host (0: none).
      clock: injectable for tests.
    """

    def __init__(
        self,
        concurrency: int = DEFAULT_HOST_CONCURRENCY,
        interval_s: float = DEFAULT_HOST_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1 or interval_s < 0:
            raise ValueError("concurrency must be >= 1 and interval_s >= 0")
        self.concurrency = concurrency
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._holders: dict[str, set[str]] = {}
        self._next_start: dict[str, float] = {}

    def try_acquire(self, host: str) -> str | float:
        with self._lock:
            holders = self._holders.setdefault(host, set())
            if len(holders) >= self.concurrency:
                return FULL_RETRY_S
            now = self._clock()
            start = self._next_start.get(host, now)
            if start > now:
                return start - now
            token = secrets.token_hex(8)
            holders.add(token)
            self._next_start[host] = now + self.interval_s
            return token

    def release(self, host: str, token: str) -> None:
        with self._lock:
            self._holders.get(host, set()).discard(token)


#: KEYS: holders (sorted set token -> expiry ms), next start (ms). ARGV: token,
#: concurrency, interval ms, hold ms. Returns {1, 0} or {0, wait ms}.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, 50}
end
local start = tonumber(redis.call('GET', KEYS[2]) or '0')
if start > now then
  return {0, start - now}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) + 1000)
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'PX', tonumber(ARGV[3]) + 1000)
end
return {1, 0}
"""


class RedisHostLimiter:
    """Slots shared by every process using one Redis (production).

    Parameters:
      client: a ``redis.Redis`` client.
      prefix: key prefix (the broker's namespace).
      concurrency, interval_s: as :class:`HostLimiter`.
      hold_s: longest a slot is held; a dead holder's slot frees itself after it.
    """

    def __init__(
        self,
        client: Any,
        prefix: str,
        concurrency: int = DEFAULT_HOST_CONCURRENCY,
        interval_s: float = DEFAULT_HOST_INTERVAL_S,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        if concurrency < 1 or interval_s < 0 or hold_s <= 0:
            raise ValueError("concurrency must be >= 1, interval_s >= 0, hold_s > 0")
        self._client = client
        self._prefix = prefix
        self._args = (concurrency, round(interval_s * 1000), round(hold_s * 1000))
        self._acquire = client.register_script(_ACQUIRE)

    def _keys(self, host: str) -> list[str]:
        base = f"{self._prefix}:host:{host}"
        return [f"{base}:holders", f"{base}:next"]

    def try_acquire(self, host: str) -> str | float:
        token = secrets.token_hex(8)
        acquired, wait_ms = self._acquire(keys=self._keys(host), args=[token, *self._args])
        return token if acquired else max(int(wait_ms), 1) / 1000

    def release(self, host: str, token: str) -> None:
        self._client.zrem(self._keys(host)[0], token)


def unlimited() -> HostLimiter:
    """A limiter that never waits (tests and benchmarks of raw throughput)."""
    return HostLimiter(concurrency=1_000_000, interval_s=0)
