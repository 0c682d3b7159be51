"""The scale bench's machinery at a tiny size, so it cannot rot between measured runs.

20 feeds, 50 searches, one worker and the scheduler for 20 s, everything due at start:
the farm serves, the seeded database is what the pipeline expects (it fetches, stores
and runs on it), the figures are read, and the database and Redis keys are gone after.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from bench import scale
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, require_service

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_scale_bench_runs_the_pipeline_at_tiny_size(tmp_path: Path) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    database = f"newsmon_scale_test_{secrets.token_hex(4)}"
    args = scale.parse_args(
        [
            "--searches", "50", "--sources", "20", "--duration", "20", "--warmup", "0",
            "--workers", "1", "--threads", "2", "--farm-processes", "1", "--start-due",
            "--database", database, "--redis-db", str(REDIS_TEST_DB), "--logs", str(tmp_path),
        ]
    )  # fmt: skip

    [result] = scale.run(args)

    seeded, fig = result.seeded, result.figures
    assert (seeded.searches, seeded.sources, seeded.organizations) == (50, 20, 5)
    assert seeded.links >= 50 and seeded.entries > 0
    # All 20 feeds share one host, whose politeness (1 s apart) spreads their fetches
    # over the window; the worker stores them and runs the 50 due searches.
    assert fig["fetches_per_s"] > 0 and fig["fetch_statuses"]
    assert fig["refreshes_stored_per_s"] > 0
    assert fig["runs_per_s"] > 0 and fig["runs_failed"] == 0
    assert fig["db_connections_max"] > 0
    assert fig["worker_rss_mb_max"] > 50 and fig["scheduler_rss_mb_max"] > 50
    assert "runs/s (finished)" in scale.report([result])
    admin = create_engine(scale.PG_ADMIN_URL)
    with admin.connect() as conn:
        left = conn.scalar(
            text("SELECT count(*) FROM pg_database WHERE datname = :d"), {"d": database}
        )
    admin.dispose()
    assert left == 0
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB)
    assert not list(client.scan_iter(match="newsmon-scale-*"))
    client.close()
