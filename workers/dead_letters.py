"""Dead-lettered messages: list them per queue, replay one, purge.

A message is dead-lettered when its actor fails in a way dramatiq does not retry (the
actors retry transient failures and an unreachable database; a bug or a time limit ends
here). The database stays the source of truth: a
replayed run message is claimed like any other, so replaying one twice is harmless.

Where dramatiq keeps them (read in ``dramatiq/brokers/redis/dispatch.lua``, 2.x):
``<namespace>:<queue>.XQ`` is a sorted set of Redis message ids scored by the
dead-lettering time (ms), ``<namespace>:<queue>.XQ.msgs`` a hash of id -> encoded
message; the broker drops entries older than its ``dead_message_ttl`` during
maintenance. Messages that failed in the delay queue (``<queue>.DQ``) land in the same
``<queue>.XQ``. The in-process ``StubBroker`` keeps them in ``dead_letters_by_queue``,
keyed by the queue consumed (``<queue>`` or ``<queue>.DQ``).

A dead letter can be settled without a replay: the sweeper re-runs a run or delivery
whose message died, and its claim completes it. :func:`resolve_dead_letters` looks the
run or delivery up, so listings show such a letter as resolved (replaying it would find
nothing to do) and ``purge_resolved`` drops them.

On Redis, ``nack`` moves the body the message was *enqueued* with, so the failure's
retries and traceback (added by the Retries middleware) would be lost;
:class:`KeepFailureDetails` writes the failed body back just before the nack.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name, q_name
from dramatiq.middleware import Middleware
from sqlalchemy.orm import Session

from core.delivery.deliveries import delivery_states
from core.errors import ValidationError
from core.scheduling.runs import run_states

#: Dead letters listed per queue at most (newest first).
MAX_LISTED = 1000
#: Characters of a traceback kept in a listing (its end: the exception and where).
TRACEBACK_EXCERPT_CHARS = 2000
#: Message options that belong to a failed delivery attempt, dropped on replay so the
#: message starts over (fresh retries, no delay).
ATTEMPT_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id")


class KeepFailureDetails(Middleware):
    """Redis broker middleware: before a message is dead-lettered, store its current
    body (with ``retries``, ``traceback`` and ``requeue_timestamp``) in place of the one
    it was enqueued with, so the dead letter shows why it failed."""

    #: Overwrites the body only while the message is still held (never resurrects one).
    SCRIPT = (
        "if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then "
        "redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) end"
    )

    def before_nack(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        if not isinstance(broker, RedisBroker):
            return
        redis_broker: Any = broker
        key = f"{redis_broker.namespace}:{message.queue_name}.msgs"
        redis_broker.client.eval(
            self.SCRIPT, 1, key, message.options["redis_message_id"], message.encode()
        )


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as an operator sees it."""

    queue: str
    message_id: str
    actor: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    failed_at: datetime | None
    retries: int
    traceback: str | None
    #: Why no replay is needed (``run succeeded``, ``delivery sent``); None: unresolved
    #: or not known (an actor without a row to look up, or the database unreachable).
    resolved: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the API and the CLI print this)."""
        return {
            "queue": self.queue,
            "messageId": self.message_id,
            "actor": self.actor,
            "args": list(self.args),
            "kwargs": self.kwargs,
            "failedAt": self.failed_at.isoformat() if self.failed_at else None,
            "retries": self.retries,
            "traceback": self.traceback,
            "resolved": self.resolved,
        }


def dead_letter_queues(broker: dramatiq.Broker) -> list[str]:
    """The queues that can hold dead letters (every declared queue but delay queues)."""
    return sorted(q for q in broker.get_declared_queues() if q == q_name(q))


def list_dead_letters(
    broker: dramatiq.Broker, queue: str, *, limit: int = MAX_LISTED
) -> list[DeadLetter]:
    """Dead letters of ``queue``, newest first, at most ``limit``."""
    _check_queue(broker, queue)
    if isinstance(broker, RedisBroker):
        return _redis_list(broker, queue, limit)
    letters = [_describe(queue, _unwrap(m), None) for m in _stub_letters(broker, queue)]
    letters.sort(key=lambda d: d.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return letters[:limit]


#: Per actor: the kind of row a message's arguments name, its plural, and the states of
#: that row in which the message has nothing left to do.
SETTLED = {
    "run_search": ("run", "runs", ("succeeded",)),
    "deliver": ("delivery", "deliveries", ("sent",)),
}


def _subjects(letter: DeadLetter) -> list[str]:
    """The rows a message names: a run message its run (the first argument), a deliver
    message one delivery or a batch (every argument)."""
    if letter.actor not in SETTLED:
        return []
    names = letter.args if letter.actor == "deliver" else letter.args[:1]
    return [str(name) for name in names]


def resolve_dead_letters(session: Session, letters: list[DeadLetter]) -> list[DeadLetter]:
    """``letters`` with ``resolved`` set for those whose runs or deliveries have all
    completed since (or no longer exist: pruned after they finished)."""
    wanted: dict[str, list[str]] = {"run": [], "delivery": []}
    for letter in letters:
        if letter.actor in SETTLED:
            wanted[SETTLED[letter.actor][0]].extend(_subjects(letter))
    states = {
        "run": run_states(session, wanted["run"]),
        "delivery": delivery_states(session, wanted["delivery"]),
    }
    return [dataclasses.replace(d, resolved=_resolution(d, states)) for d in letters]


def _resolution(letter: DeadLetter, states: dict[str, dict[str, str]]) -> str | None:
    subjects = _subjects(letter)
    if not subjects:
        return None
    kind, kinds, done = SETTLED[letter.actor]
    found = [states[kind].get(subject) for subject in subjects]
    if any(state is not None and state not in done for state in found):
        return None
    if len(found) == 1:
        return f"{kind} {found[0]}" if found[0] is not None else f"{kind} no longer exists"
    counts = Counter(state or "no longer exist" for state in found)
    return f"{kinds}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def purge_resolved(
    broker: dramatiq.Broker, queue: str, session: Session, message_id: str | None = None
) -> int:
    """Drop the dead letters of ``queue`` whose run or delivery completed (only
    ``message_id`` if given, and only if it is resolved); returns how many."""
    letters = resolve_dead_letters(session, list_dead_letters(broker, queue))
    return sum(
        purge_dead_letters(broker, queue, letter.message_id)
        for letter in letters
        if letter.resolved is not None and message_id in (None, letter.message_id)
    )


def replay_dead_letter(broker: dramatiq.Broker, queue: str, message_id: str) -> bool:
    """Enqueue the dead-lettered message ``message_id`` again (fresh retries, no delay)
    and remove it from the dead letters. False if no such dead letter exists (already
    replayed or purged)."""
    _check_queue(broker, queue)
    if isinstance(broker, RedisBroker):
        message = _redis_take(broker, queue, message_id)
    else:
        message = _stub_take(broker, queue, message_id)
    if message is None:
        return False
    options = {k: v for k, v in message.options.items() if k not in ATTEMPT_OPTIONS}
    # dataclasses.replace, not Message.copy: copy merges options, and these must go.
    fresh = dataclasses.replace(message, queue_name=q_name(message.queue_name), options=options)
    broker.enqueue(fresh)
    return True


def purge_dead_letters(broker: dramatiq.Broker, queue: str, message_id: str | None = None) -> int:
    """Drop the dead letters of ``queue`` (only ``message_id`` if given); returns how many."""
    _check_queue(broker, queue)
    if message_id is not None:
        if isinstance(broker, RedisBroker):
            taken = _redis_take(broker, queue, message_id)
        else:
            taken = _stub_take(broker, queue, message_id)
        return 0 if taken is None else 1
    if isinstance(broker, RedisBroker):
        client, xq = _redis_keys(broker, queue)
        with client.pipeline(transaction=True) as pipe:
            pipe.zcard(xq)
            pipe.delete(xq, f"{xq}.msgs")
            count, _ = pipe.execute()
        return int(count)
    stub = _stub(broker)
    count = 0
    for name in (queue, dq_name(queue)):
        count += len(stub.dead_letters_by_queue[name])
        # Cleared in place: the broker's consumers hold a reference to these lists.
        stub.dead_letters_by_queue[name].clear()
    return count


# --- Redis -------------------------------------------------------------------------------


def _redis_keys(broker: RedisBroker, queue: str) -> tuple[Any, str]:
    redis_broker: Any = broker
    return redis_broker.client, f"{redis_broker.namespace}:{queue}.XQ"


def _redis_list(broker: RedisBroker, queue: str, limit: int) -> list[DeadLetter]:
    client, xq = _redis_keys(broker, queue)
    entries: list[tuple[bytes, float]] = client.zrevrange(xq, 0, limit - 1, withscores=True)
    if not entries:
        return []
    bodies = client.hmget(f"{xq}.msgs", [key for key, _ in entries])
    letters = []
    for (_, score), body in zip(entries, bodies, strict=True):
        if body is None:  # expired by maintenance between the two reads
            continue
        failed_at = datetime.fromtimestamp(score / 1000, tz=UTC)
        letters.append(_describe(queue, dramatiq.Message.decode(body), failed_at))
    return letters


def _redis_take(broker: RedisBroker, queue: str, message_id: str) -> dramatiq.Message[Any] | None:
    """Remove the dead letter of ``message_id`` and return it; None if absent. ZREM
    decides: of two concurrent replays, only one gets the message."""
    client, xq = _redis_keys(broker, queue)
    for key, body in client.hscan_iter(f"{xq}.msgs"):
        message = dramatiq.Message.decode(body)
        if message.message_id != message_id:
            continue
        if not client.zrem(xq, key):
            return None
        client.hdel(f"{xq}.msgs", key)
        return message
    return None


# --- in-process broker ---------------------------------------------------------------------


def _stub(broker: dramatiq.Broker) -> StubBroker:
    if not isinstance(broker, StubBroker):
        raise TypeError(f"dead letters of {type(broker).__name__} are not supported")
    return broker


def _stub_letters(broker: dramatiq.Broker, queue: str) -> list[Any]:
    stub = _stub(broker)
    return [*stub.dead_letters_by_queue[queue], *stub.dead_letters_by_queue[dq_name(queue)]]


def _stub_take(
    broker: dramatiq.Broker, queue: str, message_id: str
) -> dramatiq.Message[Any] | None:
    stub = _stub(broker)
    for name in (queue, dq_name(queue)):
        letters = stub.dead_letters_by_queue[name]
        for index, proxy in enumerate(letters):
            if proxy.message_id == message_id:
                del letters[index]
                return _unwrap(proxy)
    return None


def _unwrap(proxy: Any) -> dramatiq.Message[Any]:
    """The message of a ``MessageProxy`` (with the options the middleware added)."""
    return dramatiq.Message.decode(proxy.encode())


# --- shared --------------------------------------------------------------------------------


def _check_queue(broker: dramatiq.Broker, queue: str) -> None:
    if queue not in dead_letter_queues(broker):
        known = ", ".join(dead_letter_queues(broker))
        raise ValidationError(f"unknown queue {queue!r} (queues: {known})", "queue")


def _describe(queue: str, message: dramatiq.Message[Any], failed_at: datetime | None) -> DeadLetter:
    options = message.options
    if failed_at is None and options.get("requeue_timestamp"):
        # The in-process broker keeps no time; the Retries middleware stamps each failure.
        failed_at = datetime.fromtimestamp(options["requeue_timestamp"] / 1000, tz=UTC)
    trace = options.get("traceback")
    return DeadLetter(
        queue=queue,
        message_id=message.message_id,
        actor=message.actor_name,
        args=tuple(message.args),
        kwargs=dict(message.kwargs),
        failed_at=failed_at,
        retries=int(options.get("retries", 0)),
        traceback=trace[-TRACEBACK_EXCERPT_CHARS:] if trace else None,
    )
