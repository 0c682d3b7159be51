"""API benchmark on PostgreSQL: an authenticated list vs the same list without auth vs /healthz.

``python -m bench.api`` creates a throwaway database, seeds an organization with searches
and a key that has a quota and a rate limit (so every check runs), serves the app with
uvicorn in a subprocess, and drives the three routes with the same httpx clients, one
after the other, printing requests/s and the ratios. The unauthenticated route is a
bench-only copy of ``GET /news`` with the organization fixed, using the same session
dependency and query. Goal: authenticated >= 0.6x unauthenticated.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.deps import SessionDep
from api.pagination import page_of, paginate
from api.routes.news import NewsOut
from core.config import Settings
from core.db.models import News
from core.db.session import make_engine, unit_of_work
from core.tenancy.api_keys import create_api_key
from core.tenancy.organizations import create_organization
from tests.support.databases import fresh_pg_database

SEARCHES = 20
PAGE = 20


def serve(url: str, organization_id: str, port: int) -> None:
    app = create_app(Settings(), make_engine(url))

    @app.get("/bench/news-unauthenticated")
    def unauthenticated(session: SessionDep) -> Any:
        query = select(News).where(News.organizationId == organization_id)
        rows = list(session.scalars(paginate(query, News.id, None, PAGE)))
        return page_of([NewsOut.model_validate(r) for r in rows], [r.id for r in rows], PAGE)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def drive(base: str, path: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    """Requests/s of ``path`` with ``clients`` keep-alive clients for ``seconds``."""
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
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
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
            rates = {name: drive(base, p, h, args.seconds, args.clients) for name, p, h in targets}
        finally:
            server.terminate()
            server.wait()
    auth, plain, health = rates.values()
    print(f"{args.clients} clients, {args.seconds:.0f} s each, uvicorn in a subprocess, PostgreSQL")
    for name, rate in rates.items():
        print(f"  {name:26} {rate:8.0f} req/s")
    print(f"  authenticated / unauthenticated list: {auth / plain:.2f}x (goal >= 0.60x)")
    print(f"  unauthenticated list / healthz:       {plain / health:.2f}x")


if __name__ == "__main__":
    main()
