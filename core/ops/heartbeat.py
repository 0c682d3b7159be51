"""Liveness of the scheduler and worker processes: a heartbeat file each keeps fresh,
which ``newsmon health scheduler|worker`` (a container health check) reads.

A process writes ``<data_dir>/heartbeats/<kind>`` (an ISO timestamp, replaced atomically)
from the loop that does its work: the scheduler after every tick, the worker while all of
dramatiq's consumer and worker threads are alive. A process that hangs or loses those
threads stops writing, and the check reports it unhealthy once the beat is older than
its limit. A file rather than a database or Redis key, so that the check proves the
process itself is alive (not the shared services) and reads the beat of its own
container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: The processes that beat.
KINDS = ("scheduler", "worker")
#: Seconds between two beats of a worker.
WORKER_BEAT_EVERY_S = 10.0
#: Age past which a beat means the process is stuck, per kind (a scheduler tick waits
#: at most NEWSMON_SCHEDULER_TICK_SECONDS, 5 s by default, plus the tick itself).
DEFAULT_MAX_AGE = {"scheduler": timedelta(seconds=120), "worker": timedelta(seconds=60)}


def heartbeat_path(data_dir: Path, kind: str) -> Path:
    return data_dir / "heartbeats" / kind


def beat(path: Path, now: datetime) -> None:
    """Record ``now`` as the latest beat (written aside, then renamed: never half a beat)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(now.astimezone(UTC).isoformat())
    partial.replace(path)


@dataclass(frozen=True)
class Health:
    healthy: bool
    message: str


def check(path: Path, kind: str, max_age: timedelta, now: datetime) -> Health:
    """Healthy when the last beat at ``path`` is at most ``max_age`` old."""
    try:
        last = datetime.fromisoformat(path.read_text().strip())
    except FileNotFoundError:
        return Health(False, f"{kind}: no heartbeat at {path} (not started yet?)")
    except ValueError:
        return Health(False, f"{kind}: unreadable heartbeat at {path}")
    age = now - last
    seconds = int(age.total_seconds())
    if age > max_age:
        limit = int(max_age.total_seconds())
        return Health(False, f"{kind}: stuck: last heartbeat {seconds} s ago (limit {limit} s)")
    return Health(True, f"{kind}: alive: last heartbeat {seconds} s ago")
