"""Row 72 with real processes on PostgreSQL and Redis: with the default lease settings, a
SIGKILLed worker's run or delivery is taken over by another worker within a minute and
completed once; a run or send slower than its lease, by a live worker, is never taken over
(its worker's heartbeat renews the lease).

The takeover tests keep the scheduler's default tick (5 s, so a sweep every 30 s); the
slow-work tests shorten the lease so that "slower than the lease" takes seconds.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, select

from core.clock import utcnow
from core.config import Settings
from core.db.models import Delivery
from core.db.session import unit_of_work
from core.delivery.digests import plan_and_create
from tests.e2e.test_processes import (  # noqa: F401  (engine and procs are fixtures)
    Processes,
    engine,
    one_scheduled_run,
    procs,
    run_state,
    wait_for,
)
from tests.support import factories, steps
from tests.support.delivery import link_webhook
from tests.support.http_server import LocalHTTPServer, RawConnection
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB
from workers.broker import build_broker
from workers.deliver import enqueue_deliveries

KEY = "A" * 43
SECRET = "whsec_" + base64.b64encode(b"t" * 32).decode()
#: Seconds within which a dead worker's item must be completed by another (default
#: 30 s lease, a sweep every 30 s, the survivor's claim and work).
TAKEOVER_BOUND_S = 75.0
#: The scheduler's default tick, as production runs it.
DEFAULT_TICK = {"NEWSMON_SCHEDULER_TICK_SECONDS": "5"}
#: A lease far shorter than the slow work of the never-taken-over tests.
SHORT_LEASE_S = "1.5"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def kill_and_time_takeover(
    procs: Processes,  # noqa: F811
    doomed: subprocess.Popen[bytes],
    done: Callable[[], bool],
    what: str,
    env: dict[str, str],
) -> float:
    """Start a survivor worker, SIGKILL ``doomed`` and return the seconds until ``done``."""
    survivor = procs.start("worker", **env)
    procs.wait_log(survivor, "worker started")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed = time.monotonic()
    wait_for(done, what, timeout=TAKEOVER_BOUND_S)
    took = time.monotonic() - killed
    print(f"{what} {took:.1f} s after the kill")
    return took


def webhook_delivery(engine: Engine, url: str) -> str:  # noqa: F811
    """A pending delivery of one story to a webhook at ``url``; returns its id."""
    with unit_of_work(engine) as session:
        organization = factories.org(session)
        search = factories.news(session, organization)
        link_webhook(session, organization.id, search.id, url, SECRET, KEY)
        factories.story(session, search, "https://news.example/1", foundAt=utcnow())
    with unit_of_work(engine) as session:
        [delivery_id] = plan_and_create(
            session, organization.id, search.id, now=utcnow()
        ).delivery_ids
    return str(delivery_id)


def send(engine: Engine, procs: Processes, delivery_id: str) -> None:  # noqa: F811
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}",
        encryption_keys=KEY,
    )
    broker = build_broker(settings, namespace=procs.namespace)
    enqueue_deliveries(broker, [delivery_id])
    broker.close()


def delivery_row(engine: Engine) -> tuple[str, int]:  # noqa: F811
    with unit_of_work(engine) as session:
        row = session.scalars(select(Delivery)).one()
        return row.state, row.attempts


def test_a_killed_workers_run_is_taken_over_within_a_minute_by_default(
    engine: Engine,  # noqa: F811
    procs: Processes,  # noqa: F811
) -> None:
    env = {"NEWSMON_TEST_RUN_STEP": "tests.support.steps:blocking_step"}
    run_id = one_scheduled_run(engine, procs, **env, **DEFAULT_TICK)
    doomed = procs.start("worker", **env)
    wait_for(lambda: run_state(engine, run_id) == ("running", 1), "the first attempt")
    kill_and_time_takeover(
        procs,
        doomed,
        lambda: run_state(engine, run_id)[0] == "succeeded",
        "run taken over and completed",
        env,
    )
    assert run_state(engine, run_id) == ("succeeded", 2)
    assert steps.executions(engine, run_id) == 1


def test_a_run_slower_than_its_lease_is_never_taken_over(
    engine: Engine,  # noqa: F811
    procs: Processes,  # noqa: F811
) -> None:
    env = {
        "NEWSMON_RUN_LEASE_SECONDS": SHORT_LEASE_S,
        "NEWSMON_TEST_RUN_STEP": "tests.support.steps:long_step",
    }
    run_id = one_scheduled_run(engine, procs, **env)  # sweeping every 1.2 s
    workers = [procs.start("worker", **env) for _ in range(2)]
    wait_for(lambda: run_state(engine, run_id) == ("running", 1), "the run in flight")
    wait_for(lambda: run_state(engine, run_id)[0] == "succeeded", "the slow run")
    assert run_state(engine, run_id) == ("succeeded", 1)
    assert steps.executions(engine, run_id) == 1
    logs = "".join(procs.log(p) for p in procs.started)
    assert "taken over" not in logs and "sweeper re-enqueued" not in logs
    assert all(w.poll() is None for w in workers)


def test_a_killed_workers_delivery_is_taken_over_within_a_minute_by_default(
    engine: Engine,  # noqa: F811
    procs: Processes,  # noqa: F811
) -> None:
    first_arrived = threading.Event()

    def receiver(conn: RawConnection) -> None:
        if not first_arrived.is_set():
            first_arrived.set()
            conn.sleep(TAKEOVER_BOUND_S)  # the first worker dies waiting for this answer
            return
        conn.send(OK)

    env = {"NEWSMON_FETCH_ALLOWLIST": "127.0.0.1"}
    with LocalHTTPServer(raw={"/hook": receiver}) as server:
        delivery_id = webhook_delivery(engine, server.url_for("/hook"))
        procs.start("scheduler", **env, **DEFAULT_TICK)
        doomed = procs.start("worker", **env)
        procs.wait_log(doomed, "worker started")
        send(engine, procs, delivery_id)
        wait_for(first_arrived.is_set, "the first POST")
        kill_and_time_takeover(
            procs,
            doomed,
            lambda: delivery_row(engine)[0] == "sent",
            "delivery taken over and sent",
            env,
        )
        requests = list(server.requests)
    assert [r.headers["webhook-id"] for r in requests] == [delivery_id, delivery_id]
    assert delivery_row(engine) == ("sent", 2)


def test_a_send_slower_than_its_lease_is_never_taken_over(
    engine: Engine,  # noqa: F811
    procs: Processes,  # noqa: F811
) -> None:
    def slow_receiver(conn: RawConnection) -> None:
        conn.sleep(steps.LONG_STEP_S)  # several leases, well inside the send's deadline
        conn.send(OK)

    env = {"NEWSMON_FETCH_ALLOWLIST": "127.0.0.1", "NEWSMON_DELIVERY_LEASE_SECONDS": SHORT_LEASE_S}
    with LocalHTTPServer(raw={"/hook": slow_receiver}) as server:
        delivery_id = webhook_delivery(engine, server.url_for("/hook"))
        procs.start("scheduler", **env)  # sweeping every 1.2 s
        workers = [procs.start("worker", **env) for _ in range(2)]
        for worker in workers:
            procs.wait_log(worker, "worker started")
        send(engine, procs, delivery_id)
        wait_for(lambda: delivery_row(engine)[0] == "sent", "the slow send")
        requests = list(server.requests)
    assert [r.headers["webhook-id"] for r in requests] == [delivery_id]
    assert delivery_row(engine) == ("sent", 1)
