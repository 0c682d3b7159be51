"""Dead letters: a message whose actor fails for good is listed, replayed once, purged
(on the real Redis broker and on the in-process broker)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest

from core.config import Settings
from core.errors import ValidationError
from workers.broker import DELIVER_QUEUE, FETCH_QUEUE, QUEUES, build_broker
from workers.dead_letters import (
    dead_letter_queues,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letter,
)

#: Seconds a test waits for the worker to process what it sent.
SETTLE_S = 10.0


@dataclass
class World:
    broker: dramatiq.Broker
    broker_url: str = ""
    fail: bool = True
    done: list[str] = field(default_factory=list)
    actor: dramatiq.Actor[[str, int], None] | None = None

    def send(self, label: str, number: int, message_id: str) -> None:
        assert self.actor is not None
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=FETCH_QUEUE,
                actor_name="flaky",
                args=(label, number),
                kwargs={},
                options={},
                message_id=message_id,
            )
        )

    def wait_dead(self, count: int) -> None:
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            if len(list_dead_letters(self.broker, FETCH_QUEUE)) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"expected {count} dead letters")

    def wait_done(self, count: int) -> None:
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and len(self.done) < count:
            time.sleep(0.05)
        time.sleep(0.2)  # room for a duplicate to show


@pytest.fixture(params=["stub", "redis"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        settings = Settings(
            database_url="postgresql://postgres@127.0.0.1:5432/unused",
            broker_url=url,
            encryption_keys="A" * 43,
        )
        broker = build_broker(settings, namespace=f"newsmon-test-{secrets.token_hex(4)}")
    else:
        url, broker = "", build_broker(Settings())
    built = World(broker, url)

    def flaky(label: str, number: int) -> None:
        if built.fail:
            raise RuntimeError(f"boom {label} {number}")
        built.done.append(label)

    declare = dramatiq.actor(
        actor_name="flaky", queue_name=FETCH_QUEUE, broker=broker, max_retries=0
    )
    built.actor = declare(flaky)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    yield built
    worker.stop(timeout=5000)
    broker.close()


def test_failed_message_is_listed_with_actor_args_time_and_traceback(world: World) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    world.send("a", 1, "msg-a")
    world.wait_dead(1)

    (letter,) = list_dead_letters(world.broker, FETCH_QUEUE)
    assert (letter.queue, letter.message_id, letter.actor) == (FETCH_QUEUE, "msg-a", "flaky")
    assert (letter.args, letter.kwargs, letter.retries) == (("a", 1), {}, 1)
    assert letter.failed_at is not None and before <= letter.failed_at <= datetime.now(UTC)
    assert letter.traceback is not None and "RuntimeError: boom a 1" in letter.traceback
    assert letter.as_dict()["failedAt"] == letter.failed_at.isoformat()
    assert list_dead_letters(world.broker, DELIVER_QUEUE) == []


def test_replay_runs_the_message_again_once_and_removes_it(world: World) -> None:
    world.send("a", 1, "msg-a")
    world.send("b", 2, "msg-b")
    world.wait_dead(2)
    world.fail = False

    assert replay_dead_letter(world.broker, FETCH_QUEUE, "msg-a") is True
    assert replay_dead_letter(world.broker, FETCH_QUEUE, "msg-a") is False
    world.wait_done(1)

    assert world.done == ["a"]
    assert [d.message_id for d in list_dead_letters(world.broker, FETCH_QUEUE)] == ["msg-b"]


def test_replayed_message_that_fails_again_is_a_dead_letter_again(world: World) -> None:
    world.send("a", 1, "msg-a")
    world.wait_dead(1)
    assert replay_dead_letter(world.broker, FETCH_QUEUE, "msg-a")
    world.wait_dead(1)

    (letter,) = list_dead_letters(world.broker, FETCH_QUEUE)
    assert (letter.message_id, letter.retries) == ("msg-a", 1)  # retries start over


def test_purge_one_then_all(world: World) -> None:
    for i in range(3):
        world.send(f"m{i}", i, f"msg-{i}")
    world.wait_dead(3)

    assert purge_dead_letters(world.broker, FETCH_QUEUE, "msg-1") == 1
    assert purge_dead_letters(world.broker, FETCH_QUEUE, "msg-1") == 0
    assert {d.message_id for d in list_dead_letters(world.broker, FETCH_QUEUE)} == {
        "msg-0",
        "msg-2",
    }
    assert purge_dead_letters(world.broker, FETCH_QUEUE) == 2
    assert list_dead_letters(world.broker, FETCH_QUEUE) == []
    assert replay_dead_letter(world.broker, FETCH_QUEUE, "msg-0") is False


def test_unknown_queue_is_refused_naming_the_queues(world: World) -> None:
    assert dead_letter_queues(world.broker) == sorted(QUEUES)
    with pytest.raises(ValidationError, match=r"^queue: unknown queue 'fetch.DQ'"):
        list_dead_letters(world.broker, "fetch.DQ")


@pytest.mark.parametrize("world", ["redis"], indirect=True)
def test_cli_lists_replays_and_purges(world: World) -> None:
    broker: Any = world.broker
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env.update(
        NEWSMON_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/unused",
        NEWSMON_BROKER_URL=world.broker_url,
        NEWSMON_ENCRYPTION_KEYS="A" * 43,
        NEWSMON_TEST_BROKER_NAMESPACE=broker.namespace,
    )

    def newsmon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from cli.main import main; main()", "dlq", *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    world.send("a", 1, "msg-a")
    world.send("b", 2, "msg-b")
    world.wait_dead(2)

    listed = [json.loads(line) for line in newsmon("list").stdout.splitlines()]
    assert {d["messageId"] for d in listed} == {"msg-a", "msg-b"}
    assert all(d["actor"] == "flaky" and d["traceback"] for d in listed)
    world.fail = False
    assert json.loads(newsmon("replay", "msg-a").stdout) == {"replayed": "msg-a", "queue": "fetch"}
    missing = newsmon("replay", "msg-a")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no dead letter msg-a in queue fetch"
    world.wait_done(1)
    assert world.done == ["a"]
    assert json.loads(newsmon("purge").stdout) == {"purged": 1, "queue": "fetch"}
    assert newsmon("list").stdout == ""
