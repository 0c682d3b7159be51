"""Months as usage counts them: UTC, ``YYYY-MM``, ranges bounded and in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import ValidationError
from core.usage.limits import Limits
from core.usage.months import MAX_MONTHS_PER_QUERY, month_of, month_range, parse_month


def test_the_month_is_the_utc_one() -> None:
    berlin_new_year = datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert month_of(berlin_new_year) == "2026-12"
    assert month_of(datetime(2026, 3, 9, tzinfo=UTC)) == "2026-03"


def test_ranges_cross_years_and_are_bounded() -> None:
    assert month_range("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert month_range("2026-05", "2026-05") == ["2026-05"]
    assert len(month_range("2025-01", "2026-12")) == MAX_MONTHS_PER_QUERY
    with pytest.raises(ValidationError, match="more than 24 months") as too_long:
        month_range("0001-01", "9999-12")  # refused before listing 120,000 months
    assert too_long.value.field == "to"
    with pytest.raises(ValidationError) as backwards:
        month_range("2026-12", "2026-11")
    assert backwards.value.field == "to"


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "26-01", "2026-01 ", "\uff12\uff10\uff12\uff16-01"]
)
def test_only_real_months_parse(text: str) -> None:
    with pytest.raises(ValidationError, match="YYYY-MM"):
        parse_month(text)


def test_limits_describe_themselves_for_the_operator_page() -> None:
    assert Limits().describe() == "none"
    assert Limits(maxSearches=3, maxDeliveriesPerDay=0).describe() == (
        "maxSearches 3, maxDeliveriesPerDay 0"
    )
