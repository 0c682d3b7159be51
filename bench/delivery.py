"""Delivery throughput: the whole deliver path against plain httpx POSTs, one run.

Run: .venv/bin/python -m bench.delivery [--deliveries 10000] [--threads 8]

On a fresh PostgreSQL database and the real Redis (db 3 or ``NEWSMON_BENCH_REDIS_URL``,
a namespace of its own), one
search with one webhook channel gets ``--deliveries`` one-story digests, each with a
pending delivery. A local receiver (uvicorn, keep-alive, answers 200) runs in its own
process. Measured, in deliveries/s:

  newsmon x1 / x2   1 and 2 worker processes (``--threads`` dramatiq threads each) running
                    the ``deliver`` actor: claim, load digest, open the sealed config,
                    render JSON, sign, POST through the guarded client, record the outcome;
                    the deliveries enqueued one per message (as a run enqueues its own)
                    and in batches (as the sweeper re-enqueues a backlog).
  httpx             one process, ``--threads`` threads sharing one ``httpx.Client``,
                    POSTing the same bodies and headers (pre-rendered): the network floor.
  broker + httpx    1 and 2 worker processes on the same broker consuming one message per
                    delivery whose actor POSTs the pre-rendered request with plain httpx:
                    the floor of one delivery per message (the broker's own cost added).

and the ratios against the network floor (and, for one per message, the broker's).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import dramatiq
import httpx
from sqlalchemy import Engine, func, insert, select, text, update

from core.clock import utcnow
from core.config import Settings
from core.db.models import (
    Channel,
    Delivery,
    Digest,
    DigestStory,
    News,
    NewsChannel,
    Organization,
    Story,
)
from core.db.session import WORKER_ENGINE_OPTIONS, make_engine, unit_of_work
from core.delivery import channels as ch
from core.delivery.model import load_digest
from core.delivery.render_json import render_json
from core.delivery.send_webhook import webhook_headers
from core.ids import new_id
from core.secrets import generate_key_string, parse_keys
from tests.support.databases import fresh_pg_database
from workers.deliver import DELIVERY_BATCH_SIZE

#: Redis database of the benchmark (each measurement deletes its own namespace's keys).
REDIS_URL = os.environ.get("NEWSMON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1rZXktMzItYnl0ZXMhIQ=="
#: Seconds the receiver may take to start (a loaded machine is slow to import uvicorn).
RECEIVER_START_S = 90
#: Seconds to wait for all deliveries of one measurement.
TIMEOUT_S = 600.0
#: Worker processes of each measurement.
PROCESSES = (1, 2)


async def receiver_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The receiver: read the body, answer 200 (ASGI, no framework)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_receiver(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.delivery:receiver_app",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
    )
    deadline = time.monotonic() + RECEIVER_START_S
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}")
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("receiver did not start")


def populate(engine: Engine, key: str, url: str, count: int) -> tuple[str, list[str]]:
    """One org, search, webhook channel; ``count`` one-story digests with deliveries."""
    now = utcnow()
    stamp = {"createdAt": now, "updatedAt": now}
    with unit_of_work(engine) as s:
        org = Organization(name="Bench", slug=f"bench-{secrets.token_hex(3)}")
        s.add(org)
        s.flush()
        news = News(organizationId=org.id, name="Bench search")
        channel = Channel(organizationId=org.id, type="webhook", name="receiver", config={})
        s.add_all([news, channel])
        s.flush()
        valid = ch.validate_config("webhook", {"url": url, "secret": SECRET})
        channel.config = ch.seal_config("webhook", valid, parse_keys(key), org.id, channel.id)
        s.add(NewsChannel(organizationId=org.id, newsId=news.id, channelId=channel.id))
        stories, digests, links, deliveries = [], [], [], []
        for i in range(count):
            story_id, digest_id = new_id(), new_id()
            stories.append(
                {
                    "id": story_id,
                    "organizationId": org.id,
                    "newsId": news.id,
                    "title": f"Story {i}: something happened",
                    "url": f"https://n.example/{i}",
                    "snippet": "A lead paragraph. " * 8,
                    "sourceName": "n.example",
                    "relevanceScore": 0.8,
                    "foundAt": now,
                    **stamp,
                }
            )
            digests.append(
                {
                    "id": digest_id,
                    "organizationId": org.id,
                    "newsId": news.id,
                    "digestKey": f"i:{story_id}",
                    "storyCount": 1,
                    **stamp,
                }
            )
            links.append({"id": new_id(), "digestId": digest_id, "storyId": story_id, **stamp})
            deliveries.append(
                {
                    "id": new_id(),
                    "organizationId": org.id,
                    "channelId": channel.id,
                    "digestId": digest_id,
                    "state": "pending",
                    "nextAttemptAt": now,
                    **stamp,
                }
            )
        for model, rows in (
            (Story, stories),
            (Digest, digests),
            (DigestStory, links),
            (Delivery, deliveries),
        ):
            s.execute(insert(model), rows)
    with engine.connect() as conn:
        # Statistics, as autovacuum keeps them on a live database: planned on empty-table
        # estimates, each claim would scan every story of the organization.
        conn.execute(text("ANALYZE"))
        conn.commit()
    return org.id, [str(d["id"]) for d in deliveries]


def reset(engine: Engine) -> None:
    """Every delivery pending and due again, its stories undelivered."""
    with unit_of_work(engine) as s:
        s.execute(
            update(Delivery).values(
                state="pending",
                attempts=0,
                sentAt=None,
                nextAttemptAt=utcnow() - timedelta(seconds=1),
            )
        )
        s.execute(update(Story).values(wasDelivered=False))
    # Each measurement starts on tables as the first found them, as autovacuum keeps a
    # live database: without this, every reset leaves another 10,000 dead row versions
    # in the tables the later measurements claim from and record into.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def worker_process(
    settings: Settings, namespace: str, threads: int, ready: Any, stop: MpEvent
) -> None:
    from workers.broker import build_broker
    from workers.pipeline import build_pipeline
    from workers.process import run_worker

    engine = make_engine(settings.sqlalchemy_url, **WORKER_ENGINE_OPTIONS)  # as `newsmon worker`
    broker = build_pipeline(settings, engine, broker=build_broker(settings, namespace=namespace))
    ready.release()
    run_worker(broker, threads, relayed(stop))


def relayed(stop: MpEvent) -> threading.Event:
    """A thread event set when the parent's process event ``stop`` is."""
    halt = threading.Event()

    def relay() -> None:
        stop.wait()
        halt.set()

    threading.Thread(target=relay, daemon=True).start()
    return halt


def drop_namespace(broker: dramatiq.Broker, namespace: str) -> None:
    """Delete the measurement's Redis keys (its queues, acks and heartbeats)."""
    client = broker.client  # type: ignore[attr-defined]
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)


def start_workers(procs: list[Any], ready: Any) -> None:
    """Start ``procs`` and wait until each is consuming (failing if one died)."""
    for proc in procs:
        proc.start()
    waiting = len(procs)
    while waiting:
        if ready.acquire(timeout=1.0):
            waiting -= 1
        elif not all(proc.is_alive() for proc in procs):
            for proc in procs:
                proc.kill()
            raise RuntimeError("a worker process died while starting (its traceback is above)")
    time.sleep(1.0)  # workers consuming


def measure_newsmon(
    engine: Engine,
    settings: Settings,
    ids: list[str],
    processes: int,
    threads: int,
    batch_size: int,
) -> float:
    from workers.deliver import enqueue_deliveries

    reset(engine)
    namespace = f"bench-delivery-{secrets.token_hex(3)}"

    def sent() -> int:
        with unit_of_work(engine) as s:
            return s.scalar(select(func.count()).where(Delivery.state == "sent")) or 0

    return measure_workers(
        worker_process,
        (settings, namespace, threads),
        processes,
        settings,
        namespace,
        enqueue=lambda broker: enqueue_deliveries(broker, ids, batch_size=batch_size),
        done=sent,
        total=len(ids),
        poll_s=0.2,  # each count reads the table: kept rare beside the workers
    )


def measure_workers(
    target: Callable[..., None],
    args: tuple[Any, ...],
    processes: int,
    settings: Settings,
    namespace: str,
    *,
    enqueue: Callable[[dramatiq.Broker], None],
    done: Callable[[], int],
    total: int,
    poll_s: float,
) -> float:
    """Deliveries/s of ``processes`` spawned ``target(*args, ready, stop)`` workers:
    timed from ``enqueue`` until ``done()`` reaches ``total``; their keys deleted after."""
    from workers.broker import build_broker

    context = mp.get_context("spawn")
    ready, stop = context.Semaphore(0), context.Event()
    procs = [context.Process(target=target, args=(*args, ready, stop)) for _ in range(processes)]
    start_workers(procs, ready)
    broker = build_broker(settings, namespace=namespace)
    started = time.perf_counter()
    enqueue(broker)
    deadline = time.monotonic() + TIMEOUT_S
    while (finished := done()) < total and time.monotonic() < deadline:
        time.sleep(poll_s)
    elapsed = time.perf_counter() - started
    stop.set()
    for proc in procs:
        proc.join(60)
    drop_namespace(broker, namespace)
    if finished < total:
        raise RuntimeError(f"only {finished} of {total} delivered in {TIMEOUT_S:g} s")
    return total / elapsed


Requests = dict[str, tuple[bytes, dict[str, str]]]


def rendered(engine: Engine, org_id: str, ids: list[str], url: str) -> Requests:
    """Each delivery's body and signed headers, rendered once."""
    config = ch.WebhookConfig(url=url, secret=SECRET)
    with unit_of_work(engine) as s:
        pairs = s.execute(select(Delivery.id, Delivery.digestId).where(Delivery.id.in_(ids))).all()
        requests = {}
        for delivery_id, digest_id in pairs:
            body = render_json(load_digest(s, org_id, digest_id))
            requests[delivery_id] = (body, webhook_headers(config, delivery_id, body, utcnow()))
    return requests


def measure_httpx(requests: Requests, url: str, threads: int) -> float:
    """The same bodies and signed headers, pre-rendered, POSTed by plain httpx."""
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=threads)) as client:

        def post(item: tuple[bytes, dict[str, str]]) -> None:
            client.post(url, content=item[0], headers=item[1]).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, requests.values()))
        elapsed = time.perf_counter() - started
    return len(requests) / elapsed


def floor_worker_process(
    settings: Settings,
    url: str,
    requests: Requests,
    posted: Any,
    namespace: str,
    threads: int,
    ready: Any,
    stop: MpEvent,
) -> None:
    """A worker on the same broker whose actor only POSTs a pre-rendered request."""
    from workers.broker import DELIVER_QUEUE, build_broker
    from workers.process import run_worker

    broker = build_broker(settings, namespace=namespace)
    client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=threads))

    @dramatiq.actor(broker=broker, queue_name=DELIVER_QUEUE, actor_name="post")
    def post(delivery_id: str) -> None:
        body, headers = requests[delivery_id]
        client.post(url, content=body, headers=headers).raise_for_status()
        with posted.get_lock():
            posted.value += 1

    ready.release()
    run_worker(broker, threads, relayed(stop))
    client.close()


def measure_broker_floor(
    settings: Settings, requests: Requests, url: str, processes: int, threads: int
) -> float:
    """Deliveries/s of one message each whose actor does nothing but the plain POST."""
    from workers.broker import DELIVER_QUEUE

    namespace = f"bench-floor-{secrets.token_hex(3)}"
    posted = mp.get_context("spawn").Value("i", 0)

    def enqueue(broker: dramatiq.Broker) -> None:
        for delivery_id in requests:
            broker.enqueue(
                dramatiq.Message(
                    queue_name=DELIVER_QUEUE,
                    actor_name="post",
                    args=(delivery_id,),
                    kwargs={},
                    options={},
                )
            )

    return measure_workers(
        floor_worker_process,
        (settings, url, requests, posted, namespace, threads),
        processes,
        settings,
        namespace,
        enqueue=enqueue,
        done=lambda: int(posted.value),
        total=len(requests),
        poll_s=0.05,
    )


@dataclass(frozen=True)
class Figures:
    """One run's rates, deliveries/s."""

    deliveries: int
    threads: int
    httpx: float
    #: Broker + plain POST, one per message, by worker processes.
    broker_post: dict[int, float]
    #: newsmon's deliver actor by (deliveries per message, worker processes).
    newsmon: dict[tuple[int, int], float]


def run(deliveries: int, threads: int, redis_url: str = REDIS_URL) -> Figures:
    """Every measurement, side by side, on a fresh database and a local receiver (and
    Redis at ``redis_url``, each measurement in a namespace of its own)."""
    port = free_port()
    receiver = start_receiver(port)
    hook = f"http://127.0.0.1:{port}/hook"
    key = generate_key_string()
    try:
        with fresh_pg_database() as url:
            settings = Settings(
                database_url=url,
                broker_url=redis_url,
                encryption_keys=key,
                fetch_allowlist="127.0.0.1",
            )
            engine = make_engine(url)
            org_id, ids = populate(engine, key, hook, deliveries)
            requests = rendered(engine, org_id, ids, hook)
            floor = measure_httpx(requests, hook, threads)
            broker_post = {
                processes: measure_broker_floor(settings, requests, hook, processes, threads)
                for processes in PROCESSES
            }
            newsmon = {
                (size, processes): measure_newsmon(engine, settings, ids, processes, threads, size)
                for size in (1, DELIVERY_BATCH_SIZE)
                for processes in PROCESSES
            }
            engine.dispose()
    finally:
        receiver.terminate()
        receiver.wait(10)
    return Figures(deliveries, threads, floor, broker_post, newsmon)


def report(figures: Figures) -> str:
    """The rates and their ratios, one line each."""
    floor = figures.httpx

    def processes(count: int) -> str:
        return f"{count} worker process{'es' if count > 1 else ''}"

    lines = [
        f"{figures.deliveries} deliveries, {figures.threads} threads per process, local receiver",
        f"  plain httpx POSTs (same payloads): {floor:8.0f} /s",
    ]
    for count, rate in figures.broker_post.items():
        lines.append(
            f"  broker + plain httpx POST, one per message, {processes(count)}: "
            f"{rate:6.0f} /s   ratio {rate / floor:.2f}"
        )
    for (size, count), rate in figures.newsmon.items():
        label = "one per message" if size == 1 else f"batches of {size}"
        line = (
            f"  newsmon deliver, {label}, {processes(count)}: "
            f"{rate:6.0f} /s   ratio {rate / floor:.2f}"
        )
        if size == 1:
            line += f"   ({rate / figures.broker_post[count]:.2f} of broker + POST)"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    print(report(run(args.deliveries, args.threads)))


if __name__ == "__main__":
    main()
