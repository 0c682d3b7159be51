"""The delivery bench's machinery at a tiny size, so it cannot rot between measured runs.

40 deliveries, every measurement of a real run (plain httpx, broker + POST, newsmon one
per message and in batches, 1 and 2 worker processes): each completes with every
delivery sent, the report states each ratio, and no Redis key of the bench is left.
"""

from __future__ import annotations

import pytest
import redis

from bench import delivery
from tests.support.services import REDIS_HOST, REDIS_PORT, REDIS_TEST_DB, require_service
from workers.deliver import DELIVERY_BATCH_SIZE

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_delivery_bench_runs_every_measurement_at_tiny_size() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"

    figures = delivery.run(40, threads=2, redis_url=redis_url)

    assert figures.httpx > 0
    assert set(figures.broker_post) == {1, 2}
    assert set(figures.newsmon) == {(size, n) for size in (1, DELIVERY_BATCH_SIZE) for n in (1, 2)}
    assert all(rate > 0 for rate in [*figures.broker_post.values(), *figures.newsmon.values()])
    text = delivery.report(figures)
    assert text.count("ratio") == 6
    assert "newsmon deliver, batches of 20, 2 worker processes" in text
    assert text.count("of broker + POST") == 2
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB)
    assert not list(client.scan_iter(match="bench-*"))
    client.close()
