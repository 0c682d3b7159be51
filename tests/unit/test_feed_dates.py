"""Feed dates: a misread date or one far in the future is replaced by the fetch time and
flagged; every standard date is read as before, on both parse paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.feeds.dates import MAX_FUTURE_SKEW, check_feed_date, settle_date
from core.feeds.parse import parse_xml

BASE = "https://feeds.example.org/feed.xml"
FETCHED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def entry_with_date(element: str, text: str, fast_path: bool):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
        f"<item><title>a</title><link>http://e.org/1</link><{element}>{text}</{element}>"
        "</item></channel></rss>"
    ).encode()
    (entry,) = parse_xml(body, {}, BASE, fast_path=fast_path).entries
    return entry


#: (feed date, its day as published or None, words of the flag or None). feedparser's
#: ISO 8601 fallback fills a field it did not find from today's date, so the misread
#: day itself depends on when the test runs: only the obvious reading is asserted.
DATES = [
    ("Fri, 10 Jan 2020 14:33:00 GMT", datetime(2020, 1, 10, 14, 33, tzinfo=UTC), None),
    ("10 Jan 2020 14:33 +0100", datetime(2020, 1, 10, 13, 33, tzinfo=UTC), None),
    ("Fri, 10 Jan 2020 23:33:00 EST", datetime(2020, 1, 11, 4, 33, tzinfo=UTC), None),
    ("2020-01-10T14:33:00Z", datetime(2020, 1, 10, 14, 33, tzinfo=UTC), None),
    ("2020-01-10T14:33:00+02:00", datetime(2020, 1, 10, 12, 33, tzinfo=UTC), None),
    ("2020-01-10", datetime(2020, 1, 10, tzinfo=UTC), None),
    ("2020-05", datetime(2020, 5, 1, tzinfo=UTC), None),  # W3C-DTF month precision
    ("2020-1-10 14:33:00", datetime(2020, 1, 10, 14, 33, tzinfo=UTC), None),
    ("Wed Jan 10 14:33:00 2020", datetime(2020, 1, 10, 14, 33, tzinfo=UTC), None),
    ("20200110T143300", datetime(2020, 1, 10, tzinfo=UTC), None),  # same day: kept
    ("2020/1/10 14:33:00", None, "obviously 2020-01-10"),
    ("2020/01/10", None, "obviously 2020-01-10"),
    ("2020.01.10 08:00", None, "obviously 2020-01-10"),
    ("2020/1/10 14:33:00 +0100", None, "obviously 2020-01-10"),
    ("10-01-2020", None, "obviously 2020-01-10 or 2020-10-01"),  # ambiguous both ways
    ("2024年1月10日", None, "has no clear reading"),
    ("2020-W02", None, "has no clear reading"),
    ("1518478934", None, "has no clear reading"),  # a Unix time in dc:date
    ("22.11.2022 12:16:00", None, None),  # feedparser reads no date: none to flag
    ("not a date", None, None),
]


@pytest.mark.parametrize(("text", "published", "flag"), DATES, ids=[d[0] for d in DATES])
@pytest.mark.parametrize("element", ["pubDate", "dc:date"])
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "feedparser"])
def test_feed_dates_are_read_or_flagged(text, published, flag, element, fast_path):
    entry = entry_with_date(element, text, fast_path)
    assert entry.published == published
    if flag is None:
        assert entry.date_issue is None
    else:
        assert entry.date_issue is not None
        assert entry.date_issue.startswith(f"feed date {text!r} read as ")
        assert entry.date_issue.endswith(flag)


def test_the_obvious_reading_is_checked_in_utc_with_feedparsers_zone_names():
    late = datetime(2020, 1, 11, 4, 33, tzinfo=UTC)  # 23:33 EST, the next day in UTC
    assert check_feed_date("Fri 10 Jan 2020 23:33 EST", late) == (late, None)


@pytest.mark.parametrize(
    ("published", "issue", "stored", "flagged"),
    [
        (FETCHED - timedelta(days=3), None, FETCHED - timedelta(days=3), None),
        (None, None, None, None),  # no date at all: recency treats it as new anyway
        (FETCHED + MAX_FUTURE_SKEW, None, FETCHED + MAX_FUTURE_SKEW, None),
        (FETCHED + timedelta(hours=30), None, FETCHED, "lies 1 day(s) in the future"),
        (FETCHED + timedelta(days=400), None, FETCHED, "lies 400 day(s) in the future"),
        (None, "feed date 'x' read as ...", FETCHED, "feed date 'x' read as ..."),
    ],
)
def test_misread_and_future_dates_become_the_fetch_time(published, issue, stored, flagged):
    at, why = settle_date(published, issue, FETCHED)
    assert at == stored
    assert (why is None) == (flagged is None)
    if flagged:
        assert why is not None and why.endswith(flagged)
