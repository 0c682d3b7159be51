"""One digest model, one presentation, one template per medium: escaping, grouping,
highlighting, links, Slack's limits, schema (row 27)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from itertools import pairwise
from typing import Any

import pytest

from core.delivery.channels import validate_config
from core.delivery.digest_links import DigestLinks
from core.delivery.model import AlsoReported, DigestView, StoryView, outlet_name, sample_digest
from core.delivery.presenting import ShownDigest, age, highlight, local_time, present
from core.delivery.render_email import render_email, render_text
from core.delivery.render_html import render_email_html, render_html, render_markdown
from core.delivery.render_json import PAYLOAD_VERSION, render_json
from core.delivery.render_slack import (
    FEEDBACK_ACTION,
    MAX_BLOCKS,
    MAX_BUTTON_VALUE_CHARS,
    MAX_HEADER_CHARS,
    MAX_SECTION_CHARS,
    render_slack,
)
from core.delivery.template_env import escape_markdown
from core.errors import ValidationError
from tests.support.digest_fixtures import NOW as FIXTURE_NOW
from tests.support.digest_fixtures import all_titles, fixtures

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVIL = StoryView(
    id="evil",
    title='<script>alert(1)</script> & <@channel> "quoted" *bold* [x](y)',
    url="javascript:alert(1)",
    snippet="<img src=x onerror=alert(1)> ü ☃",
    source="evil.example",
    published_at=NOW,
    score=0.7,
    also_reported=(AlsoReported(source="<b>other</b>", url="https://other.example/a|b>c"),),
)
LINKS = DigestLinks("https://newsmon.example", [b"k" * 32])


def digest(*stories: StoryView, **fields: Any) -> DigestView:
    return replace(sample_digest(NOW, "org"), stories=stories, **fields)


def shown(view: DigestView, **kwargs: Any) -> ShownDigest:
    return present(view, now=NOW, **kwargs)


def test_slack_escapes_mrkdwn_and_never_links_a_script_url() -> None:
    [message] = render_slack(shown(digest(EVIL)))
    header, _summary, section, also, _footer = message["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    text = section["text"]["text"]
    assert section["text"]["verbatim"] is True
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<@channel>" not in text and "&lt;@channel&gt;" in text
    assert "javascript:" not in json.dumps(message)
    assert also["type"] == "context"
    assert (
        "<https://other.example/a%7Cb%3Ec|&lt;b&gt;other&lt;/b&gt;>" in also["elements"][0]["text"]
    )
    assert "evil.example · just now (12:00 UTC)" in text and "score" not in text


def test_slack_splits_long_digests_within_limits_and_loses_no_story() -> None:
    long = replace(EVIL, url="https://example.com/a", snippet="x" * 5000, title="t" * 4000)
    stories = [replace(long, id=f"s{i}", cluster_id=f"c{i}") for i in range(90)]
    messages = render_slack(shown(digest(*stories), links=LINKS, channel_id="ch"))
    assert len(messages) > 1
    sections = 0
    for message in messages:
        assert len(message["blocks"]) <= MAX_BLOCKS
        assert len(message["blocks"][0]["text"]["text"]) <= MAX_HEADER_CHARS
        assert message["text"] and len(message["text"]) <= MAX_SECTION_CHARS
        for block in message["blocks"]:
            texts = [block["text"]] if "text" in block else block.get("elements", [])
            assert all(len(t["text"]) <= MAX_SECTION_CHARS for t in texts)
        sections += sum(b["type"] == "section" for b in message["blocks"])
    assert sections == 90


def test_html_escapes_text_and_links_only_http() -> None:
    page = render_html(shown(digest(EVIL, sample_digest(NOW).stories[0])))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert 'href="javascript' not in page
    assert 'href="https://example.com/news/1?a=1&amp;b=2"' in page


def test_html_is_an_email_layout_with_inline_css_a_preheader_and_nothing_external() -> None:
    page = render_html(shown(digest(*sample_digest(NOW).stories)))
    assert re.search(r'<table class="container"[^>]* width="600"', page)
    assert "max-width:600px" in page  # inlined: style attributes, not only a <style> rule
    assert re.search(r'<td class="header" style="[^"]*padding', page)
    assert 'class="preheader" style="display:none' in page
    assert "prefers-color-scheme: dark" in page  # media queries stay in <style>
    assert not re.search(r"""(src=|url\(|@import|<link)""", page)


def test_markdown_escapes_only_what_markdown_would_read() -> None:
    text = render_markdown(shown(digest(EVIL)))
    assert "\\*bold\\*" in text and "\\[x\\](y)" in text
    assert "(javascript" not in text
    plain = replace(
        EVIL,
        title="Server 127.0.0.1 moved to daily-planet.example (v2.0!)",
        url="https://daily-planet.example/a",
        source="Daily Planet",
        snippet="- 1. # not a list",
    )
    text = render_markdown(shown(digest(plain)))
    assert "127.0.0.1" in text and "daily-planet.example (v2.0!)" in text
    assert "\\." not in text.replace("1\\. #", "") and "\\-" not in text.replace("\\- 1", "")
    assert escape_markdown("- 1. # x") == "\\- 1. # x"  # only a line's first marker matters


def test_json_payload_has_version_and_survives_any_text() -> None:
    body = render_json(digest(EVIL))
    assert b"<script>" not in body
    payload = json.loads(body)
    assert payload["version"] == PAYLOAD_VERSION and payload["type"] == "digest"
    story = payload["digest"]["stories"][0]
    assert story["title"] == EVIL.title and story["snippet"] == EVIL.snippet
    assert story["alsoReportedBy"] == [
        {"source": "<b>other</b>", "url": EVIL.also_reported[0].url, "outlet": "<b>other</b>"}
    ]
    assert payload["digest"]["createdAt"] == "2026-06-01T12:00:00Z"


def test_email_is_multipart_utf8_with_unsubscribe_and_no_header_injection() -> None:
    evil = sample_digest(NOW, search_name="Ünïcode\r\nBcc: victim@example.com")
    message = render_email(
        shown(evil, unsubscribe_url="https://example.com/unsub?id=1"),
        date=NOW,
        sender="newsmon@example.com",
        to=["a@example.com", "b@example.com"],
        unsubscribe_url="https://example.com/unsub?id=1",
        unsubscribe_mailto="unsub@example.com",
    )
    parsed = message_from_bytes(message.as_bytes(), policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Bcc"] is None
    assert parsed["Subject"].startswith("Ünïcode Bcc: victim@example.com: 2 new stories")
    assert parsed["List-Unsubscribe"] == (
        "<mailto:unsub@example.com>, <https://example.com/unsub?id=1>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "https://example.com/news/1?a=1&b=2" in text
    assert "Unsubscribe: https://example.com/unsub?id=1" in text
    assert "&lt;b&gt;escaping&lt;/b&gt;" in html and "<script>" not in html


def test_every_format_shows_each_storys_one_line_reason_escaped() -> None:
    why = "matched \u201cai\u201d in the title; <b>your feedback</b> raised it & more"
    story = replace(sample_digest(NOW).stories[1], reason=why)
    view = shown(digest(story))
    slack = json.dumps(render_slack(view))
    assert (
        "matched \u201cai\u201d in the title" in json.loads(slack)[0]["blocks"][2]["text"]["text"]
    )
    assert "&lt;b&gt;your feedback&lt;/b&gt; raised it &amp; more" in slack
    assert "Why: matched \u201cai\u201d in the title; &lt;b&gt;your feedback&lt;/b&gt;" in (
        render_html(view)
    )
    assert "Why: matched \u201cai\u201d in the title; \\<b>your feedback" in render_markdown(view)
    payload = json.loads(render_json(digest(story)))
    assert payload["digest"]["stories"][0]["reason"] == why
    assert f"Why: {why}" in render_text(view)


def test_stories_are_grouped_by_cluster_urgent_first_with_also_reported_by() -> None:
    base = sample_digest(NOW).stories[1]
    calm = replace(base, id="calm", title="Calm story", cluster_id="c1")
    calm_copy = replace(
        base,
        id="calm2",
        title="Calm story, second take",
        cluster_id="c1",
        also_reported=(AlsoReported("Wire Service", "https://wire.example/1"),),
    )
    alarm = replace(base, id="alarm", title="Alarm story", urgent=True, cluster_id="c2")
    view = shown(digest(calm, alarm, calm_copy))
    assert [[s.id for s in c.stories] for c in view.clusters] == [["alarm"], ["calm", "calm2"]]
    assert view.clusters[1].also == (AlsoReported("Wire Service", "https://wire.example/1"),)
    text = render_text(view)
    assert (
        text.index("1. [URGENT] Alarm story")
        < text.index("2. Calm story")
        < text.index("3. Calm story, second take")
        < text.index("Also reported by: Wire Service <https://wire.example/1>")
    )
    assert view.preheader.startswith("Urgent: Alarm story")
    [message] = render_slack(view)
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "context", "section", "section", "section", "context", "context"]


def test_snippets_mark_the_querys_terms_as_whole_words() -> None:
    pieces = highlight("Economy and economics: the ECB cut rates; ecbx no.", ["econom*", "ecb"])
    assert [p.text for p in pieces if p.hit] == ["Economy", "economics", "ECB"]
    pieces = highlight("L'Économie de la Straße frei, dit-il", ["economie", "strasse frei"])
    assert [p.text for p in pieces if p.hit] == ["Économie", "Straße frei"]
    assert "".join(p.text for p in pieces) == "L'Économie de la Straße frei, dit-il"
    view = shown(digest(replace(EVIL, snippet="The ECB <b>cut</b> rates"), query_terms=("ecb",)))
    assert '<b class="hit" style="' in render_html(view)
    assert ">ECB</b> &lt;b&gt;cut&lt;/b&gt;" in render_html(view)
    assert "The **ECB** \\<b>cut\\</b> rates" in render_markdown(view)
    assert "The *ECB* &lt;b&gt;cut" in json.dumps(render_slack(view))


def test_age_and_local_time_in_the_channels_zone() -> None:
    assert age(NOW - timedelta(hours=2, minutes=5), NOW) == "2 h ago"
    assert age(NOW - timedelta(minutes=7), NOW) == "7 min ago"
    assert age(NOW + timedelta(minutes=7), NOW) == "just now"
    berlin = __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    assert local_time(NOW - timedelta(hours=2), NOW, berlin) == "12:00 CEST"
    assert local_time(NOW - timedelta(days=2), NOW, berlin) == "30 May 14:00 CEST"
    story = replace(EVIL, published_at=NOW - timedelta(hours=2))
    view = shown(digest(story), zone="Europe/Berlin")
    assert "evil.example · 2 h ago (12:00 CEST)" in render_text(view)


def test_outlet_is_the_feeds_name_not_a_host() -> None:
    assert outlet_name("Daily Planet", "feed", "127.0.0.1") == "Daily Planet"
    story = replace(EVIL, source="127.0.0.1", outlet="Daily Planet", url="https://x.example/")
    assert "Daily Planet · just now" in render_text(shown(digest(story)))
    # the webhook payload keeps the host in ``source`` (as ever) and adds ``outlet``
    [sent] = json.loads(render_json(digest(story)))["digest"]["stories"]
    assert (sent["source"], sent["outlet"]) == ("127.0.0.1", "Daily Planet")
    assert outlet_name("Google News - ai", "google_news", "www.reuters.com") == "reuters.com"
    assert outlet_name(None, "feed", "www.example.com") == "example.com"


def test_feedback_and_unsubscribe_links_appear_only_with_a_public_address() -> None:
    view = digest(*sample_digest(NOW).stories)
    without = shown(view, recipient="a@example.com")
    assert "/d/feedback" not in render_html(without) + render_text(without)
    assert without.unsubscribe_url is None and without.manage_url is None
    with_links = shown(view, links=LINKS, channel_id="ch", recipient="a@example.com")
    page = render_html(with_links)
    assert page.count("https://newsmon.example/d/feedback?t=") == 4
    assert "https://newsmon.example/d/unsubscribe?t=" in page and "Manage this alert" in page
    text = render_text(with_links)
    assert text.count("Relevant: https://newsmon.example/d/feedback?t=") == 2
    assert "[Relevant](<https://newsmon.example/d/feedback?t=" in render_markdown(with_links)
    assert "|Relevant>" in json.dumps(render_slack(with_links))


def test_a_configured_unsubscribe_url_stays_beside_newsmons_own() -> None:
    view = shown(
        digest(*sample_digest(NOW).stories),
        links=LINKS,
        channel_id="ch",
        recipient="a@example.com",
        unsubscribe_url="https://lists.example/prefs",
    )
    assert view.unsubscribe_url and view.unsubscribe_url.startswith("https://newsmon.example/")
    assert view.preferences_url == "https://lists.example/prefs"
    assert re.search(
        r'href="https://lists.example/prefs"[^>]*>Email preferences', render_html(view)
    )


def test_non_latin_titles_and_an_empty_digest_render_everywhere() -> None:
    story = replace(
        EVIL, title="東京で新しいAI規制 — Αθήνα", url="https://example.jp/記事", snippet="日本語"
    )
    for view in (shown(digest(story)), shown(digest())):
        assert render_html(view).startswith("<!DOCTYPE html>")
        assert render_markdown(view).startswith("# ")
        render_text(view)
        render_slack(view)
    assert "東京で新しいAI規制 — Αθήνα" in render_html(shown(digest(story)))


def test_every_fixture_digest_renders_within_each_mediums_rules() -> None:
    """Slack within Block Kit's limits, every story in each format, the plain text free of
    markup, no template syntax or HTML left in the Markdown."""
    for name, view in fixtures().items():
        show = present(view, now=FIXTURE_NOW, links=LINKS, channel_id="ch", recipient="a@x.example")
        titles = [" ".join(t.split()) for t in all_titles(view)]
        messages = render_slack(show)
        assert sum(b["type"] == "section" for m in messages for b in m["blocks"]) == len(titles)
        for message in messages:
            assert len(message["blocks"]) <= MAX_BLOCKS, name
            assert 0 < len(message["text"]) <= MAX_SECTION_CHARS, name
            for block in message["blocks"]:
                if block["type"] == "header":
                    assert len(block["text"]["text"]) <= MAX_HEADER_CHARS
                elif block["type"] == "section":
                    assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
                else:
                    assert 0 < len(block["elements"]) <= 10
                    assert all(len(e["text"]) <= MAX_SECTION_CHARS for e in block["elements"])
        text = render_text(show)
        markdown = render_markdown(show)
        assert text.split("\n")[3] == "" and text.split("\n")[4].startswith("1. ")  # spaced
        for title in titles:
            assert title in text, (name, title)
            assert escape_markdown(title) in markdown, (name, title)
        assert 'class="' not in text and "</td>" not in text, name  # no template markup
        assert "{{" not in text + markdown and "{%" not in text + markdown, name
        assert "\\." not in markdown.replace("1\\.", "") and "\\-" not in markdown, name


def test_an_email_too_long_for_gmail_shows_its_last_stories_in_brief() -> None:
    """Gmail clips past 102 KB: the HTML part stays within its budget by showing the
    last stories with title, outlet and age only; every story is still there."""
    view = fixtures()["forty stories"]
    full = present(view, now=FIXTURE_NOW, links=LINKS, channel_id="ch")
    size = len(render_html(full).encode())
    page = render_email_html(full, max_bytes=size // 2)
    assert len(page.encode()) <= size // 2
    assert 0 < page.count('class="fb"') // 2 < len(view.stories)
    for title in all_titles(view):
        assert title in page
    assert render_email_html(full) == render_html(full)  # within the default budget as is


def test_a_channels_time_zone_must_be_a_real_one() -> None:
    config = validate_config("slack", {"url": "https://hooks.example/x", "timezone": "Asia/Tokyo"})
    assert config.timezone == "Asia/Tokyo"
    with pytest.raises(ValidationError) as refused:
        validate_config("file", {"directory": "d", "timezone": "Mars/Olympus_Mons"})
    assert refused.value.field == "config.timezone"


def test_slack_buttons_carry_the_signed_tokens_and_stay_within_block_kit_limits() -> None:
    view = fixtures()["forty stories"]
    show = present(view, now=FIXTURE_NOW, links=LINKS, channel_id="ch")
    messages = render_slack(show, buttons=True)
    assert len(messages) > 1  # 40 sections and 40 actions blocks need more than one message
    voted: list[tuple[str, str]] = []
    for message in messages:
        blocks = message["blocks"]
        assert len(blocks) <= MAX_BLOCKS
        for before, block in pairwise(blocks):
            if block["type"] == "actions":  # a story's buttons follow its section, same message
                assert before["type"] == "section"
                assert "/d/feedback" not in before["text"]["text"]
                yes, no = block["elements"]
                assert (yes["text"]["text"], yes["style"]) == ("Relevant", "primary")
                assert no["text"]["text"] == "Not relevant" and "style" not in no
                assert yes["action_id"] != no["action_id"]
                for button in (yes, no):
                    assert button["action_id"].startswith(FEEDBACK_ACTION)
                    assert len(button["value"]) <= MAX_BUTTON_VALUE_CHARS
                    claim = LINKS.verify(button["value"], "feedback", now=FIXTURE_NOW)
                    assert (claim.organization_id, claim.channel_id) == ("org_demo", "ch")
                    voted.append((claim.story_id, claim.label))
    ids = [s.id for s in view.stories]
    assert sorted(voted) == sorted((i, lab) for i in ids for lab in ("relevant", "not_relevant"))
    sections = sum(b["type"] == "section" for m in messages for b in m["blocks"])
    assert sections == len(ids)


def test_slack_without_buttons_or_without_links_keeps_feedback_links() -> None:
    view = fixtures()["forty stories"]
    linked = present(view, now=FIXTURE_NOW, links=LINKS, channel_id="ch")
    plain = json.dumps(render_slack(linked))
    assert '"actions"' not in plain and plain.count("|Relevant>") == 40
    unlinked = json.dumps(render_slack(present(view, now=FIXTURE_NOW), buttons=True))
    assert '"actions"' not in unlinked and "Relevant" not in unlinked
