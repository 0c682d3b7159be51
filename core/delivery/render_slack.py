"""Slack Block Kit messages of a digest: a header, a context line with the count and
period, then per cluster one section per story (title link, outlet, age, snippet with
the query's terms in bold, reason, and "Relevant" / "Not relevant" links when the web
process has a public address) and a context line "also reported by"; a footer context
with the digest key and "manage this alert".

Feedback is offered as links, or, with ``buttons`` (a Slack app's interactivity endpoint
is configured: ``NEWSMON_SLACK_SIGNING_SECRET``), as an ``actions`` block of two buttons
after the story's section, each carrying the link's signed token as its ``value``
(:mod:`api.routes.slack_interactions` records it). Story text is escaped
for mrkdwn (``&``, ``<``, ``>``: Slack's only escapes) and sent with ``verbatim`` so
titles cannot mention ``@channel`` or auto-link. Every text stays within Slack's
limits (3,000 characters per section or context text, 150 per header, 50 blocks per
message); a longer digest is split into several messages, posted in order, each with a
plain-text ``text`` fallback for notifications.
"""

from __future__ import annotations

from typing import Any

from core.delivery.presenting import Piece, ShownCluster, ShownDigest, ShownStory, cut

#: Slack's limit on blocks per message.
MAX_BLOCKS = 50
#: Slack's limits on a header's plain text and a section's (or context element's) text.
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
#: Characters of a title, snippet, reason or outlet kept in a section: with the links
#: below, a story's section stays under ``MAX_SECTION_CHARS``.
MAX_PART_CHARS = 300
#: Longest URL linked (a longer one is left out: its label shows unlinked).
MAX_LINK_CHARS = 1000
#: Slack's limit on the top-level fallback ``text`` we keep well under.
MAX_FALLBACK_CHARS = 3000
#: Blocks every message carries besides the stories: header, summary context, footer.
FIXED_BLOCKS = 3
#: ``action_id`` prefix of the feedback buttons (Slack wants them unique per block).
FEEDBACK_ACTION = "newsmon_feedback"
#: Slack's limit on a button's ``value``.
MAX_BUTTON_VALUE_CHARS = 2000

Block = dict[str, Any]


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None, label: str) -> str:
    if not url or len(url) > MAX_LINK_CHARS:
        return escape_mrkdwn(label)
    # ``|`` and ``>`` end Slack's <url|label> syntax; percent-encode them in the URL.
    href = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{href}|{escape_mrkdwn(label)}>"


def _snippet(pieces: tuple[Piece, ...]) -> str:
    text = "".join(p.text for p in pieces)
    if len(text) > MAX_PART_CHARS:
        return escape_mrkdwn(cut(text, MAX_PART_CHARS))
    return "".join(f"*{escape_mrkdwn(p.text)}*" if p.hit else escape_mrkdwn(p.text) for p in pieces)


def story_text(story: ShownStory, *, buttons: bool = False) -> str:
    """The mrkdwn of one story's section (within ``MAX_SECTION_CHARS``)."""
    title = _link(story.url, cut(story.title, MAX_PART_CHARS))
    lines = [f":rotating_light: *Urgent* · *{title}*" if story.urgent else f"*{title}*"]
    when = story.age + (f" ({story.local_time})" if story.local_time else "")
    facts = [escape_mrkdwn(cut(story.outlet, MAX_PART_CHARS))] if story.outlet else []
    lines.append(" · ".join([*facts, when] if when else facts))
    if story.snippet:
        lines.append(_snippet(story.snippet))
    if story.reason:
        lines.append(f"_Why:_ {escape_mrkdwn(cut(story.reason, MAX_PART_CHARS))}")
    if story.feedback and not (buttons and _buttons(story)):
        lines.append(
            f"{_link(story.feedback.relevant, 'Relevant')} · "
            f"{_link(story.feedback.not_relevant, 'Not relevant')}"
        )
    return cut_mrkdwn("\n".join(line for line in lines if line), MAX_SECTION_CHARS)


def cut_mrkdwn(text: str, limit: int) -> str:
    """``text`` within ``limit``, cut at a line end so no link is broken."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    return kept[: kept.rfind("\n")] + "…" if "\n" in kept else cut(text, limit)


def _buttons(story: ShownStory) -> Block | None:
    """The story's feedback buttons, or ``None`` if it has no token fit for a button."""
    feedback = story.feedback
    tokens = (feedback.relevant_token, feedback.not_relevant_token) if feedback else ("", "")
    if not all(0 < len(token) <= MAX_BUTTON_VALUE_CHARS for token in tokens):
        return None
    relevant = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Relevant"},
        "style": "primary",
        "action_id": f"{FEEDBACK_ACTION}_relevant",
        "value": tokens[0],
    }
    not_relevant = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Not relevant"},
        "action_id": f"{FEEDBACK_ACTION}_not_relevant",
        "value": tokens[1],
    }
    return {"type": "actions", "elements": [relevant, not_relevant]}


#: Blocks that stay in one message (a story's section and its buttons), and the story.
Unit = tuple[list[Block], ShownStory | None]


def _cluster_units(cluster: ShownCluster, buttons: bool) -> list[Unit]:
    units: list[Unit] = []
    for story in cluster.stories:
        text = story_text(story, buttons=buttons)
        blocks: list[Block] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
        ]
        actions = _buttons(story) if buttons else None
        if actions is not None:
            blocks.append(actions)
        units.append((blocks, story))
    if cluster.also:
        others = ", ".join(_link(a.url, cut(a.name, MAX_PART_CHARS)) for a in cluster.also)
        units.append(
            (
                [
                    {
                        "type": "context",
                        "elements": [
                            {
                                "type": "mrkdwn",
                                "text": cut_mrkdwn(
                                    f"Also reported by: {others}", MAX_SECTION_CHARS
                                ),
                                "verbatim": True,
                            }
                        ],
                    }
                ],
                None,
            )
        )
    return units


def _pack(
    clusters: tuple[ShownCluster, ...], room: int, buttons: bool
) -> list[tuple[list[Block], list[ShownStory]]]:
    """Clusters' blocks (and their stories) packed into messages of at most ``room``
    story blocks, a cluster kept whole unless it alone exceeds a message, a story's
    section and buttons always together."""
    messages: list[tuple[list[Block], list[ShownStory]]] = [([], [])]
    for cluster in clusters:
        units = _cluster_units(cluster, buttons)
        size = sum(len(blocks) for blocks, _ in units)
        if messages[-1][0] and len(messages[-1][0]) + size > room:
            messages.append(([], []))
        for blocks, story in units:
            if messages[-1][0] and len(messages[-1][0]) + len(blocks) > room:
                messages.append(([], []))
            messages[-1][0].extend(blocks)
            if story is not None:
                messages[-1][1].append(story)
    return messages


def _fallback(title: str, stories: list[ShownStory]) -> str:
    """Plain text for notifications: the title, then each story's title and outlet."""
    lines = [title]
    for story in stories:
        outlet = f" ({story.outlet})" if story.outlet else ""
        lines.append(f"• {'URGENT: ' if story.urgent else ''}{story.title}{outlet}")
    return cut_mrkdwn(escape_mrkdwn("\n".join(lines)), MAX_FALLBACK_CHARS)


def render_slack(shown: ShownDigest, *, buttons: bool = False) -> list[dict[str, Any]]:
    """The messages (incoming-webhook JSON bodies) of the digest, in sending order;
    ``buttons``: feedback as buttons (an interactivity endpoint receives them)."""
    chunks = _pack(shown.clusters, MAX_BLOCKS - FIXED_BLOCKS, buttons)
    count = shown.counted
    summary = escape_mrkdwn(count + (f" · {shown.period}" if shown.period else ""))
    kind = "health alert" if shown.health else "digest"
    footer = f"newsmon {kind} {escape_mrkdwn(shown.key)}"
    if shown.manage_url:
        footer += f" · {_link(shown.manage_url, 'Manage this alert')}"
    messages = []
    for number, (blocks, stories) in enumerate(chunks, start=1):
        name = shown.search_name or shown.title
        title = name if len(chunks) == 1 else f"{name} ({number}/{len(chunks)})"
        messages.append(
            {
                "text": _fallback(f"{title}: {count}", stories),
                "blocks": [
                    {
                        "type": "header",
                        "text": {"type": "plain_text", "text": cut(title, MAX_HEADER_CHARS)},
                    },
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": summary}]},
                    *blocks,
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]},
                ],
            }
        )
    return messages
