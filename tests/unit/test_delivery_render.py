"""One digest model, one renderer per medium: escaping, limits, schema (row 27)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

from core.delivery.model import AlsoReported, DigestView, StoryView, sample_digest
from core.delivery.render_email import render_email
from core.delivery.render_html import render_html, render_markdown
from core.delivery.render_json import PAYLOAD_VERSION, render_json
from core.delivery.render_slack import MAX_BLOCKS, MAX_SECTION_CHARS, render_slack

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


def digest(*stories: StoryView) -> DigestView:
    return replace(sample_digest(NOW, "org"), stories=stories)


def test_slack_escapes_mrkdwn_and_never_links_a_script_url() -> None:
    [message] = render_slack(digest(EVIL))
    header, section, _context = message["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    text = section["text"]["text"]
    assert section["text"]["verbatim"] is True
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<@channel>" not in text and "&lt;@channel&gt;" in text
    assert "javascript:" not in text
    assert "<https://other.example/a%7Cb%3Ec|&lt;b&gt;other&lt;/b&gt;>" in text
    assert "score 0.70" in text and "2026-06-01 12:00 UTC" in text


def test_slack_splits_long_digests_within_limits() -> None:
    long = replace(EVIL, url="https://example.com/a", snippet="x" * 5000, title="t" * 4000)
    stories = [replace(long, id=f"s{i}") for i in range(90)]
    messages = render_slack(digest(*stories))
    assert len(messages) == 3
    for message in messages:
        assert len(message["blocks"]) <= MAX_BLOCKS
        assert all(
            len(b["text"]["text"]) <= MAX_SECTION_CHARS
            for b in message["blocks"]
            if b["type"] == "section"
        )
        assert len(message["blocks"][0]["text"]["text"]) <= 150
    assert sum(len(m["blocks"]) - 2 for m in messages) == 90


def test_html_escapes_text_and_links_only_http() -> None:
    page = render_html(digest(EVIL, sample_digest(NOW).stories[0]))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert 'href="javascript' not in page
    assert 'href="https://example.com/news/1?a=1&amp;b=2"' in page


def test_markdown_escapes_punctuation() -> None:
    text = render_markdown(digest(EVIL))
    assert "\\*bold\\*" in text and "\\[x\\]\\(y\\)" in text
    assert "(javascript" not in text


def test_json_payload_has_version_and_survives_any_text() -> None:
    body = render_json(digest(EVIL))
    assert b"<script>" not in body
    payload = json.loads(body)
    assert payload["version"] == PAYLOAD_VERSION and payload["type"] == "digest"
    story = payload["digest"]["stories"][0]
    assert story["title"] == EVIL.title and story["snippet"] == EVIL.snippet
    assert story["alsoReportedBy"] == [{"source": "<b>other</b>", "url": EVIL.also_reported[0].url}]
    assert payload["digest"]["createdAt"] == "2026-06-01T12:00:00Z"


def test_email_is_multipart_utf8_with_unsubscribe_and_no_header_injection() -> None:
    evil = replace(sample_digest(NOW, search_name="Ünïcode\r\nBcc: victim@example.com"))
    message = render_email(
        evil,
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
    assert "&lt;b&gt;escaping&lt;/b&gt;" in html and "<script>" not in html


def test_every_format_shows_each_storys_one_line_reason_escaped() -> None:
    why = "matched \u201cai\u201d in the title; <b>your feedback</b> raised it & more"
    story = replace(sample_digest(NOW).stories[1], reason=why)
    view = digest(story)
    slack = json.dumps(render_slack(view))
    assert (
        "matched \u201cai\u201d in the title" in json.loads(slack)[0]["blocks"][1]["text"]["text"]
    )
    assert "&lt;b&gt;your feedback&lt;/b&gt; raised it &amp; more" in slack
    html = render_html(view)
    assert "Why: matched \u201cai\u201d in the title; &lt;b&gt;your feedback&lt;/b&gt;" in html
    assert "Why: matched \u201cai\u201d in the title; \\<b\\>your feedback" in render_markdown(view)
    payload = json.loads(render_json(view))
    assert payload["digest"]["stories"][0]["reason"] == why
    message = message_from_bytes(
        bytes(render_email(view, sender="a@example.com", to=["b@example.com"])), policy=default
    )
    plain = message.get_body(("plain",))
    assert plain is not None and f"Why: {why}" in plain.get_content()
