"""A health alert in words (pure): what it says for each kind of change, and that every
channel format carries it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.delivery.model import HealthChange
from core.delivery.presenting import present
from core.delivery.render_email import render_email
from core.delivery.render_html import render_markdown
from core.delivery.render_json import render_json
from core.delivery.render_slack import render_slack
from core.health.message import alert_view, heading

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEAD_FEED = HealthChange(
    subject="source",
    subject_id="s1",
    name="Daily <Planet>",
    state="failing",
    error="HTTP 503",
    since=NOW - timedelta(minutes=5),
    url="https://feeds.example/planet.xml",
)
BACK = HealthChange("channel", "c1", "team hook", "ok", "", NOW)
RUNS = HealthChange("news", "n1", "Rail", "failing", "query broke", NOW)


def test_one_change_is_the_title_itself() -> None:
    assert heading([DEAD_FEED]) == (
        "newsmon: Source \u201cDaily <Planet>\u201d keeps failing to fetch"
    )
    assert heading([BACK]) == "newsmon: Channel \u201cteam hook\u201d works again"
    assert heading([RUNS]) == "newsmon: Search \u201cRail\u201d: its runs keep failing"


def test_several_changes_are_counted_and_problems_come_first() -> None:
    view = alert_view("a1", "o1", [BACK, DEAD_FEED, RUNS], now=NOW, failures={"s1": 7})

    assert view.title == "newsmon health: 2 failing, 1 recovered"
    assert [s.urgent for s in view.stories] == [True, True, False]
    feed = next(s for s in view.stories if s.id == "source:s1")
    assert feed.reason == "7 failed fetches in a row"
    assert feed.snippet == "HTTP 503"
    assert feed.url == "https://feeds.example/planet.xml"


def test_every_format_carries_the_alert() -> None:
    view = alert_view("a1", "o1", [DEAD_FEED, BACK], now=NOW, failures={"s1": 7})
    shown = present(view, now=NOW)

    payload = json.loads(render_json(view))
    assert payload["type"] == "health"
    assert [c["state"] for c in payload["alert"]["changes"]] == ["failing", "ok"]
    assert payload["alert"]["changes"][0]["since"] == "2026-06-01T11:55:00Z"
    slack = json.dumps(render_slack(shown))
    assert "Daily &lt;Planet&gt;" in slack and "HTTP 503" in slack
    markdown = render_markdown(shown)
    assert "team hook" in markdown and "works again" in markdown
    mail = render_email(shown, date=NOW, sender="newsmon@example.com", to=["ops@example.com"])
    assert mail["Subject"] == "newsmon health: 1 failing, 1 recovered"


def test_an_alert_never_calls_itself_a_digest_of_a_search() -> None:
    view = alert_view("a1", "o1", [DEAD_FEED, BACK], now=NOW, failures={"s1": 7})
    shown = present(view, now=NOW)
    mail = render_email(shown, date=NOW, sender="newsmon@example.com", to=["ops@example.com"])
    texts = {
        "markdown": render_markdown(shown),
        "slack": json.dumps(render_slack(shown)),
        **{
            part.get_content_type(): part.get_content()
            for part in mail.walk()
            if not part.is_multipart()
        },
    }
    for name, text in texts.items():
        assert "digest" not in text.lower(), name
        assert "new stor" not in text.lower(), name
    assert "when its monitoring breaks" in texts["markdown"]
    assert "2 changes" in texts["slack"]
