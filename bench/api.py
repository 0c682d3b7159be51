"""API benchmark on PostgreSQL: an authenticated list vs the same list without auth vs /healthz.

``python -m bench.api`` creates a throwaway database, seeds an organization with searches
and a key that has a quota and a rate limit (so every check runs), serves the app with
uvicorn in a subprocess, and drives the three routes with the same httpx clients, one
after the other, ``--rounds`` times (alternating, so a load change on a shared machine
hits both sides), printing the median requests/s and the ratio of each round. The
unauthenticated route is a bench-only copy of ``GET /news`` with the organization fixed:
the same session dependency, query parameters, query and response model. Goal:
authenticated >= 0.6x unauthenticated.

On Linux it also prints the CPU time each route costs per request, in the server process
and its PostgreSQL backends (read from ``/proc``): on a shared machine the rates follow
the load of others, while CPU per request barely moves.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx
import uvicorn
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.deps import SessionDep
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.routes.news import NewsOut
from core.config import Settings
from core.db.models import News
from core.db.session import make_engine, unit_of_work
from core.tenancy.api_keys import create_api_key
from core.tenancy.organizations import create_organization
from tests.support.databases import fresh_pg_database

#: Searches of the organization: every list answers all of them on one page.
SEARCHES = 20


def serve(url: str, organization_id: str, port: int) -> None:
    app = create_app(Settings(), make_engine(url))

    @app.get("/bench/news-unauthenticated")
    def unauthenticated(
        session: SessionDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[NewsOut]:
        query = select(News).where(News.organizationId == organization_id)
        rows = list(session.scalars(paginate(query, News.id, cursor, limit)))
        return page_of([NewsOut.model_validate(r) for r in rows], [r.id for r in rows], limit)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drive(
    base: str, path: str, headers: dict[str, str], seconds: float, clients: int
) -> tuple[int, float]:
    """Requests of ``path`` made by ``clients`` keep-alive clients in ``seconds``, and the
    seconds it took."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def loop(i: int) -> None:
        with httpx.Client(base_url=base, headers=headers) as client:
            while time.perf_counter() < stop:
                response = client.get(path)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text}")
                counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), time.perf_counter() - started


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of the processes ``pids`` (0 where /proc is absent)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command name, which is parenthesized and may hold spaces.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(engine: Engine, server: int) -> list[int]:
    """The web server process and the PostgreSQL backends serving the bench database."""
    with engine.connect() as conn:
        backends = conn.scalars(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    return [server, *backends]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="per route and round")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--serve", nargs=3, metavar=("URL", "ORG", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    with fresh_pg_database() as url:
        engine = make_engine(url)
        with unit_of_work(engine) as session:
            organization = create_organization(session, name="Bench")
            for i in range(SEARCHES):
                session.add(News(organizationId=organization.id, name=f"s{i}", searchQuery={}))
            key = create_api_key(
                session,
                organization.id,
                name="bench",
                permissions={"news": ["read"]},
                remaining=10**9,
                refill_interval_ms=3_600_000,
                refill_amount=10**9,
                rate_limit_max=10**9,
                rate_limit_window_ms=60_000,
            )
            org_id = organization.id
        engine.dispose()
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.api", "--serve", url, org_id, str(port)]
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            targets = [
                ("authenticated GET /news", "/news", {"x-api-key": key.key}),
                ("same list, no auth", "/bench/news-unauthenticated", {}),
                ("GET /healthz", "/healthz", {}),
            ]
            for _, path, headers in targets:  # warm up pools and caches
                drive(base, path, headers, 1.0, args.clients)
            watcher = create_engine(url, poolclass=NullPool)
            rounds, cpu = [], [0.0] * len(targets)
            for _ in range(args.rounds):
                row = []
                for i, (_, path, headers) in enumerate(targets):
                    pids = server_pids(watcher, server.pid)
                    before = cpu_seconds(pids)
                    row.append(drive(base, path, headers, args.seconds, args.clients))
                    cpu[i] += cpu_seconds(pids) - before
                rounds.append(row)
            watcher.dispose()
        finally:
            server.terminate()
            server.wait()
    print(
        f"{args.clients} clients, {args.rounds} alternating rounds of {args.seconds:g} s per "
        "route, uvicorn in a subprocess, PostgreSQL"
    )
    totals = [
        sum(r[i][0] for r in rounds) / sum(r[i][1] for r in rounds) for i in range(len(targets))
    ]
    for i, ((name, _, _), rate) in enumerate(zip(targets, totals, strict=True)):
        requests = sum(r[i][0] for r in rounds)
        print(f"  {name:26} {rate:8.0f} req/s  {cpu[i] / requests * 1000:6.2f} ms CPU/request")
    auth, plain, health = totals
    per_round = sorted((a[0] / a[1]) / (p[0] / p[1]) for a, p, _ in rounds)
    quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    print(
        f"  authenticated / unauthenticated list: {auth / plain:.2f}x (goal >= 0.60x; "
        f"per round: quartiles {quartiles[0]:.2f} / {quartiles[1]:.2f} / {quartiles[2]:.2f})"
    )
    print(f"  unauthenticated list / healthz:       {plain / health:.2f}x")


if __name__ == "__main__":
    main()
