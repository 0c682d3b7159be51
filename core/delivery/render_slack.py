"""Slack Block Kit messages of a digest: a header, then one section per story.

Story text is escaped for mrkdwn (``&``, ``<``, ``>``: Slack's only escapes) and sent with
``verbatim`` so titles cannot mention ``@channel`` or auto-link. A long digest is split
into several messages within Slack's limits (50 blocks, 3,000 characters per section,
150 per header); the sender posts them in order.
"""

from __future__ import annotations

from typing import Any

from core.delivery.model import DigestView, StoryView, safe_link, when

#: Slack's limit on blocks per message.
MAX_BLOCKS = 50
#: Stories per message: header + one section per story (+ a context footer) stays < 50.
STORIES_PER_MESSAGE = 40
#: Slack's limits on a header's plain text and a section's text.
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
#: Snippet characters shown per story.
MAX_SNIPPET_CHARS = 300
#: Slack's limit on the top-level fallback ``text`` we keep well under.
MAX_FALLBACK_CHARS = 3000


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str, label: str) -> str:
    href = safe_link(url)
    if href is None:
        return escape_mrkdwn(label)
    # ``|`` and ``>`` end Slack's <url|label> syntax; percent-encode them in the URL.
    href = href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{href}|{escape_mrkdwn(label)}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def story_text(story: StoryView) -> str:
    """The mrkdwn of one story's section (within ``MAX_SECTION_CHARS``)."""
    facts = [escape_mrkdwn(story.source)] if story.source else []
    if story.published_at:
        facts.append(when(story.published_at))
    facts.append(f"score {story.score:.2f}")
    lines = [f"*{_link(story.url, _cut(story.title, 500))}*", " · ".join(facts)]
    if story.snippet:
        lines.append(escape_mrkdwn(_cut(story.snippet, MAX_SNIPPET_CHARS)))
    if story.reason:
        lines.append(f"_Why:_ {escape_mrkdwn(_cut(story.reason, MAX_SNIPPET_CHARS))}")
    if story.also_reported:
        others = ", ".join(_link(a.url, a.source or a.url) for a in story.also_reported)
        lines.append(f"_Also reported by:_ {others}")
    return _cut("\n".join(lines), MAX_SECTION_CHARS)


def render_slack(digest: DigestView) -> list[dict[str, Any]]:
    """The messages (incoming-webhook JSON bodies) of ``digest``, in sending order."""
    chunks = [
        digest.stories[i : i + STORIES_PER_MESSAGE]
        for i in range(0, len(digest.stories), STORIES_PER_MESSAGE)
    ] or [()]
    messages = []
    for number, chunk in enumerate(chunks, start=1):
        title = digest.title if len(chunks) == 1 else f"{digest.title} ({number}/{len(chunks)})"
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER_CHARS)},
            }
        ]
        for story in chunk:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": story_text(story), "verbatim": True},
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"newsmon digest {escape_mrkdwn(digest.key)}"}
                ],
            }
        )
        fallback = "\n".join(escape_mrkdwn(s.title) for s in chunk)
        messages.append(
            {
                "text": _cut(f"{escape_mrkdwn(title)}\n{fallback}", MAX_FALLBACK_CHARS),
                "blocks": blocks,
            }
        )
    return messages
