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

and the ratios of the two against the floor.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

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

#: Redis database of the benchmark (flushed after each measurement: keep it off the tests' one).
REDIS_URL = os.environ.get("NEWSMON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
SECRET = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1rZXktMzItYnl0ZXMhIQ=="
#: Seconds the receiver may take to start (a loaded machine is slow to import uvicorn).
RECEIVER_START_S = 90
#: Seconds to wait for all deliveries of one measurement.
TIMEOUT_S = 600.0


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


def worker_process(
    url: str, key: str, namespace: str, threads: int, ready: Any, stop: MpEvent
) -> None:
    from workers.broker import build_broker
    from workers.pipeline import build_pipeline
    from workers.process import run_worker

    settings = Settings(
        database_url=url, broker_url=REDIS_URL, encryption_keys=key, fetch_allowlist="127.0.0.1"
    )
    engine = make_engine(settings.sqlalchemy_url, **WORKER_ENGINE_OPTIONS)  # as `newsmon worker`
    broker = build_pipeline(settings, engine, broker=build_broker(settings, namespace=namespace))
    halt = threading.Event()

    def relay() -> None:
        stop.wait()
        halt.set()

    threading.Thread(target=relay, daemon=True).start()
    ready.release()
    run_worker(broker, threads, halt)


def measure_newsmon(
    engine: Engine,
    url: str,
    key: str,
    ids: list[str],
    processes: int,
    threads: int,
    batch_size: int,
) -> float:
    from workers.broker import build_broker
    from workers.deliver import enqueue_deliveries

    reset(engine)
    namespace = f"bench-delivery-{secrets.token_hex(3)}"
    context = mp.get_context("spawn")
    ready, stop = context.Semaphore(0), context.Event()
    procs = [
        context.Process(target=worker_process, args=(url, key, namespace, threads, ready, stop))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    time.sleep(1.0)  # workers consuming
    settings = Settings(database_url=url, broker_url=REDIS_URL, encryption_keys=key)
    broker = build_broker(settings, namespace=namespace)
    started = time.perf_counter()
    enqueue_deliveries(broker, ids, batch_size=batch_size)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        with unit_of_work(engine) as s:
            sent = s.scalar(select(func.count()).where(Delivery.state == "sent")) or 0
        if sent >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # each count reads the table: kept rare beside the workers
    elapsed = time.perf_counter() - started
    stop.set()
    for proc in procs:
        proc.join(60)
    broker.client.flushdb()  # type: ignore[attr-defined]
    if sent < len(ids):
        raise RuntimeError(f"only {sent} of {len(ids)} delivered in {TIMEOUT_S:g} s")
    return len(ids) / elapsed


def measure_httpx(engine: Engine, org_id: str, ids: list[str], url: str, threads: int) -> float:
    """The same bodies and signed headers, pre-rendered, POSTed by plain httpx."""
    config = ch.WebhookConfig(url=url, secret=SECRET)
    with unit_of_work(engine) as s:
        pairs = s.execute(select(Delivery.id, Delivery.digestId).where(Delivery.id.in_(ids))).all()
        requests = []
        for delivery_id, digest_id in pairs:
            body = render_json(load_digest(s, org_id, digest_id))
            requests.append((body, webhook_headers(config, delivery_id, body, utcnow())))
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=threads)) as client:

        def post(item: tuple[bytes, dict[str, str]]) -> None:
            client.post(url, content=item[0], headers=item[1]).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, requests))
        elapsed = time.perf_counter() - started
    return len(requests) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    receiver = start_receiver(port)
    hook = f"http://127.0.0.1:{port}/hook"
    key = generate_key_string()
    try:
        with fresh_pg_database() as url:
            engine = make_engine(url)
            org_id, ids = populate(engine, key, hook, args.deliveries)
            floor = measure_httpx(engine, org_id, ids, hook, args.threads)
            rows = [
                (
                    f"{label}, {processes} worker process{'es' if processes > 1 else ''}",
                    measure_newsmon(engine, url, key, ids, processes, args.threads, size),
                )
                for label, size in (
                    ("one per message", 1),
                    (f"batches of {DELIVERY_BATCH_SIZE}", DELIVERY_BATCH_SIZE),
                )
                for processes in (1, 2)
            ]
            engine.dispose()
    finally:
        receiver.terminate()
        receiver.wait(10)
    print(f"{args.deliveries} deliveries, {args.threads} threads per process, local receiver")
    print(f"  plain httpx POSTs (same payloads): {floor:8.0f} /s")
    for label, rate in rows:
        print(f"  newsmon deliver, {label}: {rate:6.0f} /s   ratio {rate / floor:.2f}")


if __name__ == "__main__":
    main()
