"""The email of a digest: multipart/alternative (plain text + HTML), UTF-8, with a
subject line, ``List-Unsubscribe`` (RFC 2369) and one-click unsubscribe (RFC 8058).

Built with the standard library's :class:`email.message.EmailMessage` under the SMTP
policy, which encodes non-ASCII headers (RFC 2047) and bodies (quoted-printable or
base64) and uses CRLF line ends. Every header is checked with
:func:`~core.delivery.mail_headers.header_problem` (no header injection, also not through
encoded words); a config that fails it is a :class:`ValueError`, a failed delivery.
"""

from __future__ import annotations

import html
import unicodedata
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from core.delivery.mail_headers import REFUSED_CATEGORIES, header_problem
from core.delivery.model import DigestView, when
from core.delivery.render_html import render_html

#: Subject characters kept (mail clients cut long subjects anyway).
MAX_SUBJECT_CHARS = 150


def render_text(digest: DigestView) -> str:
    """The plain-text part: title, then per story its title, link, facts and snippet."""
    lines = [digest.title, "=" * min(len(digest.title), 72), ""]
    for number, story in enumerate(digest.stories, start=1):
        lines.append(f"{number}. {story.title}")
        lines.append(f"   {story.url}")
        facts = " · ".join(p for p in (story.source, when(story.published_at)) if p)
        lines.append(f"   {facts}{' · ' if facts else ''}score {story.score:.2f}")
        if story.snippet:
            lines.append(f"   {story.snippet}")
        if story.reason:
            lines.append(f"   Why: {story.reason}")
        if story.also_reported:
            others = ", ".join(f"{a.source} <{a.url}>" for a in story.also_reported)
            lines.append(f"   Also reported by: {others}")
        lines.append("")
    return "\n".join(lines)


def subject(digest: DigestView) -> str:
    """The subject line: the digest's title on one line, without control characters, and
    never read as an RFC 2047 encoded word (``=?utf-8?q?=0D=0A...?=`` in a search name
    would otherwise be decoded into the header): a word joiner keeps ``=`` and ``?``
    apart, invisibly."""
    text = "".join(
        " " if unicodedata.category(c) in REFUSED_CATEGORIES else c for c in digest.title
    )
    text = " ".join(text.split()).replace("=?", "=\N{WORD JOINER}?")
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 1] + "…"


def _set(message: EmailMessage, name: str, value: str) -> None:
    problem = header_problem(name, value)
    if problem:
        raise ValueError(f"{name} header refused: {problem}")
    message[name] = value


def render_email(
    digest: DigestView,
    *,
    sender: str,
    to: list[str],
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    message_id_domain: str | None = None,
) -> EmailMessage:
    """The message, ready for ``smtplib.SMTP.send_message``."""
    message = EmailMessage(policy=SMTP)
    _set(message, "Subject", subject(digest))
    _set(message, "From", sender)
    _set(message, "To", ", ".join(to))
    message["Date"] = format_datetime(digest.created_at)
    message["Message-ID"] = make_msgid("digest", domain=message_id_domain)
    targets = []
    if unsubscribe_mailto:
        targets.append(f"<mailto:{unsubscribe_mailto}>")
    if unsubscribe_url:
        targets.append(f"<{unsubscribe_url}>")
    footer = ""
    if targets:
        _set(message, "List-Unsubscribe", ", ".join(targets))
    if unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        link = html.escape(unsubscribe_url, quote=True)
        footer = f'<p style="font-size:12px"><a href="{link}">Unsubscribe</a></p>'
    message.set_content(render_text(digest), charset="utf-8")
    message.add_alternative(render_html(digest, footer_html=footer), subtype="html")
    return message
