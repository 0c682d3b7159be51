"""How many messages wait in each queue: ready, delayed and dead (operator views, metrics).

On Redis this reads dramatiq's own keys (``<namespace>:<queue>`` list of ready ids,
``<queue>.DQ`` the delayed list, ``<queue>.XQ`` the dead-letter sorted set, per its
``dispatch.lua``) in one pipelined round trip; on the in-process stub broker (embedded
mode) the queues' sizes, where a delayed message (a run waiting to retry) counts until it
is due: a worker takes delayed messages off their queue at once and holds them until
their time, acknowledging them only then, so the delay queue's unfinished count is what
waits. Ready messages a worker has prefetched are not counted.
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
        pipe = broker.client.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(f"{broker.namespace}:{queue}")
            pipe.llen(f"{broker.namespace}:{dq_name(queue)}")
            pipe.zcard(f"{broker.namespace}:{xq_name(queue)}")
        counts = pipe.execute()
        return [
            QueueDepth(queue, *(int(c) for c in counts[i * 3 : i * 3 + 3]))
            for i, queue in enumerate(QUEUES)
        ]
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
