"""A real in-process broker whose ``flaky`` actor fails until told not to, with a worker:
the way to make genuine dead letters for the operator routes and page."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dramatiq

from core.config import Settings
from workers.broker import FETCH_QUEUE, build_broker
from workers.dead_letters import list_dead_letters

#: Seconds to wait for the worker.
SETTLE_S = 10.0


@dataclass
class FlakyWorld:
    broker: dramatiq.Broker
    fail: bool = True
    done: int = 0

    def send(self, message_id: str, number: int = 0) -> None:
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=FETCH_QUEUE,
                actor_name="flaky",
                args=(number,),
                kwargs={},
                options={},
                message_id=message_id,
            )
        )

    def wait_dead(self, count: int) -> None:
        wait_until(lambda: len(list_dead_letters(self.broker, FETCH_QUEUE)) == count)


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@contextmanager
def flaky_world() -> Iterator[FlakyWorld]:
    world = FlakyWorld(build_broker(Settings()))

    def flaky(number: int) -> None:
        if world.fail:
            raise RuntimeError(f"boom {number}")
        world.done += 1

    declare = dramatiq.actor(
        actor_name="flaky", queue_name=FETCH_QUEUE, broker=world.broker, max_retries=0
    )
    declare(flaky)
    world.broker.emit_after("process_boot")
    worker = dramatiq.Worker(world.broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        yield world
    finally:
        worker.stop(timeout=5000)
        world.broker.close()
