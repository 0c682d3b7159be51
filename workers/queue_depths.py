"""How many messages wait in each queue: ready, delayed and dead (operator views, metrics).

A worker takes delayed messages (a run waiting to retry, a refresh waiting for its host)
off their queue at once and holds them until their time, acknowledging them only then,
so a delayed message counts until it is due wherever it waits.

On Redis this reads dramatiq's own keys (per its ``dispatch.lua``): ``<namespace>:<queue>``
the list of ready ids, ``<queue>.DQ`` the delayed list, ``<queue>.XQ`` the dead-letter
sorted set, and, for each live worker in ``__heartbeats__``, ``__acks__.<worker>.<queue>.DQ``
the delayed messages it holds: two pipelined round trips. On the in-process stub broker
(embedded mode) the queues' sizes, the delay queue's unfinished count being what waits.
Ready messages a worker has prefetched are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, xq_name

from workers.broker import QUEUES


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int
    delayed: int
    dead: int


def queue_depths(broker: dramatiq.Broker) -> list[QueueDepth]:
    """Depth of every newsmon queue on ``broker`` (raises the broker's errors if down)."""
    if isinstance(broker, RedisBroker):
        return _redis_depths(broker)
    if isinstance(broker, StubBroker):

        def size(name: str) -> int:
            found = broker.queues.get(name)
            return found.qsize() if found is not None else 0

        def waiting(name: str) -> int:
            found = broker.queues.get(name)
            return found.unfinished_tasks if found is not None else 0

        return [
            QueueDepth(
                queue,
                size(queue),
                waiting(dq_name(queue)),
                len(broker.dead_letters_by_queue[queue]),
            )
            for queue in QUEUES
        ]
    raise TypeError(f"queue depths of {type(broker).__name__} are not supported")


def _redis_depths(broker: RedisBroker) -> list[QueueDepth]:
    namespace = broker.namespace
    pipe = broker.client.pipeline(transaction=False)
    pipe.zrange(f"{namespace}:__heartbeats__", 0, -1)
    for queue in QUEUES:
        pipe.llen(f"{namespace}:{queue}")
        pipe.llen(f"{namespace}:{dq_name(queue)}")
        pipe.zcard(f"{namespace}:{xq_name(queue)}")
    workers, *counts = pipe.execute()
    held = [0] * len(QUEUES)
    if workers:
        pipe = broker.client.pipeline(transaction=False)
        for worker in workers:
            worker_id = worker.decode() if isinstance(worker, bytes) else str(worker)
            for queue in QUEUES:
                pipe.scard(f"{namespace}:__acks__.{worker_id}.{dq_name(queue)}")
        sizes = pipe.execute()
        for i, size in enumerate(sizes):
            held[i % len(QUEUES)] += int(size)
    return [
        QueueDepth(
            queue,
            int(counts[i * 3]),
            int(counts[i * 3 + 1]) + held[i],
            int(counts[i * 3 + 2]),
        )
        for i, queue in enumerate(QUEUES)
    ]
