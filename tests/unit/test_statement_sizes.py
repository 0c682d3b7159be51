"""The statements each delivery runs stay short enough for psycopg's query cache.

psycopg converts a query's ``%(name)s`` placeholders to ``$n`` on every execution unless
the query is at most ``MAX_CACHED_STATEMENT_LENGTH`` bytes long (then it converts it
once): a claim just over that length paid the conversion on every delivery.
"""

from __future__ import annotations

from typing import Any

import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from sqlalchemy.dialects import postgresql

from core.clock import utcnow
from core.db.statements import shape_of
from core.delivery import claims, record
from core.delivery.claims import ChannelTarget, ClaimedDelivery
from core.delivery.outcome import Outcome


def _sent_record(recovered: bool) -> Any:
    now = utcnow()
    claim = ClaimedDelivery("d", "o", "c", "g", 1, now, resumed=False)
    channel = ChannelTarget("c", "o", "webhook", {}, True, "ok", 0, None)
    values, _ = record._outcome_values(
        claim, channel, Outcome.sent(200, "ok"), now=now, rng=None, max_attempts=5
    )
    return record._record_sent_in_one(shape_of(values), recovered).statement


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(claims._CLAIM_DUE_LOADED.statement, id="claim"),
        pytest.param(claims._CLAIM_ABANDONED_LOADED.statement, id="claim-abandoned"),
        pytest.param(claims._CLAIM_DUE_BATCH_LOADED.statement, id="claims-gathered"),
        pytest.param(record._RECORD_SENT_TOGETHER.statement, id="records-gathered"),
        pytest.param(_sent_record(False), id="record-sent"),
        pytest.param(_sent_record(True), id="record-sent-recovered"),
    ],
)
def test_per_delivery_statements_fit_psycopg_query_cache(statement: Any) -> None:
    sql = str(statement.compile(dialect=postgresql.psycopg.dialect()))  # type: ignore[no-untyped-call]
    assert len(sql.encode()) <= MAX_CACHED_STATEMENT_LENGTH, len(sql.encode())
