"""HTML and Markdown of a digest (email's HTML part and the ``file`` channel).

Every story field is text: HTML-escaped (``html.escape`` with quotes) or Markdown-escaped
(backslash before each punctuation character Markdown gives meaning to); links only for
http(s) URLs.
"""

from __future__ import annotations

import html
import re

from core.delivery.model import DigestView, safe_link, when

#: Characters given meaning by Markdown (CommonMark's escapable ASCII punctuation).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~\"'])")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _a(url: str, label: str) -> str:
    href = safe_link(url)
    return f'<a href="{_e(href)}">{_e(label)}</a>' if href else _e(label)


def render_html(digest: DigestView, *, footer_html: str = "") -> str:
    """A complete HTML document (inline styles only: mail clients drop ``<style>``)."""
    items = []
    for story in digest.stories:
        facts = " · ".join(
            part
            for part in (_e(story.source), _e(when(story.published_at)), f"score {story.score:.2f}")
            if part
        )
        parts = [
            f'<h3 style="margin:0 0 4px">{_a(story.url, story.title)}</h3>',
            f'<div style="color:#666;font-size:12px">{facts}</div>',
        ]
        if story.snippet:
            parts.append(f'<p style="margin:6px 0">{_e(story.snippet)}</p>')
        if story.reason:
            parts.append(f'<div style="font-size:12px">Why: {_e(story.reason)}</div>')
        if story.also_reported:
            others = ", ".join(_a(a.url, a.source or a.url) for a in story.also_reported)
            parts.append(f'<div style="font-size:12px">Also reported by: {others}</div>')
        items.append(f'<li style="margin-bottom:16px">{"".join(parts)}</li>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_e(digest.title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:680px">'
        f"<h2>{_e(digest.title)}</h2>"
        f'<ul style="list-style:none;padding:0">{"".join(items)}</ul>'
        f"{footer_html}</body></html>\n"
    )


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation so a title renders as the text it is."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_link(url: str, label: str) -> str:
    href = safe_link(url)
    if href is None:
        return escape_markdown(label)
    # An angle-bracket destination may hold spaces and parentheses, not < > or newlines.
    href = href.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
    return f"[{escape_markdown(label)}](<{href}>)"


def render_markdown(digest: DigestView) -> str:
    """The digest as CommonMark: a heading, then one list item per story."""
    lines = [f"# {escape_markdown(digest.title)}", ""]
    for story in digest.stories:
        facts = " · ".join(
            part
            for part in (
                escape_markdown(story.source),
                when(story.published_at),
                f"score {story.score:.2f}",
            )
            if part
        )
        lines.append(f"- **{_md_link(story.url, story.title)}**  ")
        lines.append(f"  {facts}  ")
        if story.snippet:
            lines.append(f"  {escape_markdown(story.snippet)}  ")
        if story.reason:
            lines.append(f"  Why: {escape_markdown(story.reason)}  ")
        if story.also_reported:
            others = ", ".join(_md_link(a.url, a.source or a.url) for a in story.also_reported)
            lines.append(f"  Also reported by: {others}")
        lines.append("")
    return "\n".join(lines)
