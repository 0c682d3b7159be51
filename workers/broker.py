"""Building the dramatiq broker: Redis in production, in-process in embedded mode.

Redis keeps nothing on disk here, so the database is the source of truth and the
scheduler's sweeper re-enqueues whatever the broker loses. The Redis broker's own
recovery of a killed worker's messages is bounded by these settings: a worker that
stops heartbeating for ``HEARTBEAT_TIMEOUT_MS`` is presumed dead, and with
``MAINTENANCE_CHANCE`` per million commands (~1 in 10 fetches; idle workers fetch every
few seconds) its unacked messages are requeued within about a minute after that.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from core.config import Settings
from core.scheduling.runs import MAX_RUN_ATTEMPTS

#: Queue of search runs (fetch, parse, score). Deliveries get their own queue so a
#: fetch backlog never starves them.
FETCH_QUEUE = "fetch"
#: Queue of channel deliveries.
DELIVER_QUEUE = "deliver"
#: Redis key namespace of newsmon's queues.
NAMESPACE = "newsmon"
#: A worker silent this long (ms) is presumed dead and its messages are requeued.
HEARTBEAT_TIMEOUT_MS = 30_000
#: Commands per million that also run queue maintenance (dramatiq's default is 1,000).
MAINTENANCE_CHANCE = 100_000
#: Dead-lettered messages are kept this long (ms) for operators to inspect and replay.
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000
#: Retry backoff bounds (ms) for transient failures; the database counts attempts.
MIN_BACKOFF_MS = 5_000
MAX_BACKOFF_MS = 15 * 60_000


def middleware(
    *, min_backoff_ms: int = MIN_BACKOFF_MS, max_backoff_ms: int = MAX_BACKOFF_MS
) -> list[Middleware]:
    """dramatiq's default middleware minus Prometheus, with newsmon's retry policy."""
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=MAX_RUN_ATTEMPTS, min_backoff=min_backoff_ms, max_backoff=max_backoff_ms
        ),
    ]


def build_broker(
    settings: Settings,
    *,
    namespace: str = NAMESPACE,
    min_backoff_ms: int = MIN_BACKOFF_MS,
    max_backoff_ms: int = MAX_BACKOFF_MS,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
) -> dramatiq.Broker:
    """The broker for ``settings``: Redis when ``NEWSMON_BROKER_URL`` is set.

    ``namespace`` separates Redis keys (tests use their own); the backoff bounds and
    heartbeat timeout default to the constants above and are shortened only by tests.
    """
    stack = middleware(min_backoff_ms=min_backoff_ms, max_backoff_ms=max_backoff_ms)
    if settings.broker_url:
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.broker_url,
            namespace=namespace,
            middleware=stack,
            heartbeat_timeout=heartbeat_timeout_ms,
            maintenance_chance=MAINTENANCE_CHANCE,
            dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        )
    else:
        broker = StubBroker(middleware=stack)
    for queue in (FETCH_QUEUE, DELIVER_QUEUE):
        broker.declare_queue(queue)
    return broker
