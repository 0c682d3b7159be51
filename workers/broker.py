"""Building the dramatiq broker: Redis in production, in-process in embedded mode.

Redis keeps nothing on disk here, so the database is the source of truth and the
scheduler's sweeper re-enqueues whatever the broker loses. The Redis broker's own
recovery of a killed worker's messages is bounded by these settings: a worker that
stops heartbeating for ``HEARTBEAT_TIMEOUT_MS`` is presumed dead, and with
``MAINTENANCE_CHANCE`` per million commands (~1 in 10 fetches; idle workers fetch every
few seconds) its unacked messages are requeued within about a minute after that.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import dramatiq
import redis
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
from workers.dead_letters import KeepFailureDetails

#: Broker failures that mean "the queue is unreachable".
BROKER_ERRORS = (redis.RedisError, dramatiq.errors.BrokerError, OSError)
#: Queue of search runs (fetch, parse, score). Deliveries get their own queue so a
#: fetch backlog never starves them.
FETCH_QUEUE = "fetch"
#: Queue of channel deliveries.
DELIVER_QUEUE = "deliver"
#: Queue of source refreshes (the sources' own clock): network-bound fetches stay apart
#: from runs, which only read the database.
REFRESH_QUEUE = "refresh"
#: Every queue newsmon's actors use.
QUEUES = (FETCH_QUEUE, REFRESH_QUEUE, DELIVER_QUEUE)
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
#: Redis key (under the namespace) whose absence means Redis lost its data.
EPOCH_KEY = "epoch"
#: Messages sent to Redis per pipelined round trip by :func:`enqueue_many`.
ENQUEUE_PIPELINE_SIZE = 1000


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
    maintenance_chance: int = MAINTENANCE_CHANCE,
) -> dramatiq.Broker:
    """The broker for ``settings``: Redis when ``NEWSMON_BROKER_URL`` is set.

    ``namespace`` separates Redis keys (tests use their own); the backoff bounds,
    heartbeat timeout and maintenance chance default to the constants above and are
    changed only by tests.
    """
    stack = middleware(min_backoff_ms=min_backoff_ms, max_backoff_ms=max_backoff_ms)
    if settings.broker_url:
        stack.append(KeepFailureDetails())
        broker: dramatiq.Broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.broker_url,
            namespace=namespace,
            middleware=stack,
            heartbeat_timeout=heartbeat_timeout_ms,
            maintenance_chance=maintenance_chance,
            dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        )
    else:
        broker = StubBroker(middleware=stack)
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def broker_lost_data(broker: dramatiq.Broker) -> bool:
    """Whether the broker lost its data since the last call: Redis without persistence
    loses every queue when it restarts or is flushed, and with them the epoch key this
    sets. True on the very first call against a Redis too (nothing is known about what
    it held). The in-process broker never loses messages while its process lives."""
    if not isinstance(broker, RedisBroker):
        return False
    redis_broker: Any = broker
    key = f"{redis_broker.namespace}:{EPOCH_KEY}"
    return bool(redis_broker.client.set(key, uuid4().hex, nx=True))


def enqueue_many(broker: dramatiq.Broker, messages: list[dramatiq.Message[Any]]) -> None:
    """Enqueue ``messages`` (no delay); on Redis, ``ENQUEUE_PIPELINE_SIZE`` per round trip.

    ``RedisBroker.enqueue`` costs one round trip and one script call per message; even
    pipelined, packing 20,000 ``EVALSHA`` calls of 10 arguments was the largest part of a
    burst's enqueue time (cProfile of bench/scheduler.py). So each chunk is the two
    writes the ``enqueue`` command of dramatiq's ``dispatch.lua`` makes, batched: one
    ``HSET`` of the message bodies and one ``RPUSH`` of their ids on the queue, in one
    MULTI (a worker never sees an id without its body). What the script adds, the
    heartbeat of the sending broker, matters only to a broker that also consumes.
    The same middleware hooks are emitted as by ``enqueue``.
    """
    if not isinstance(broker, RedisBroker):
        for message in messages:
            broker.enqueue(message)
        return
    redis_broker: Any = broker
    namespace: str = redis_broker.namespace
    for start in range(0, len(messages), ENQUEUE_PIPELINE_SIZE):
        chunk = [
            m.copy(options={"redis_message_id": str(uuid4())})
            for m in messages[start : start + ENQUEUE_PIPELINE_SIZE]
        ]
        by_queue: dict[str, dict[str, bytes]] = {}
        for message in chunk:
            broker.emit_before("enqueue", message, None)
            bodies = by_queue.setdefault(message.queue_name, {})
            bodies[message.options["redis_message_id"]] = message.encode()
        pipe = redis_broker.client.pipeline(transaction=True)
        for queue_name, bodies in by_queue.items():
            queue_key = f"{namespace}:{queue_name}"
            pipe.hset(f"{queue_key}.msgs", mapping=bodies)
            pipe.rpush(queue_key, *bodies)
        pipe.execute()
        for message in chunk:
            broker.emit_after("enqueue", message, None)
