"""The email of a digest: multipart/alternative (plain text + HTML), UTF-8, with a
subject line, ``List-Unsubscribe`` (RFC 2369) and one-click unsubscribe (RFC 8058).

Built with the standard library's :class:`email.message.EmailMessage` under the SMTP
policy, which encodes non-ASCII headers (RFC 2047) and bodies (quoted-printable or
base64) and uses CRLF line ends. Every header is checked with
:func:`~core.delivery.mail_headers.header_problem` (no header injection, also not through
encoded words); a config that fails it is a :class:`ValueError`, a failed delivery.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from core.delivery.mail_headers import REFUSED_CATEGORIES, header_problem
from core.delivery.presenting import ShownDigest
from core.delivery.render_html import render_email_html
from core.delivery.template_env import environment

#: Subject characters kept (mail clients cut long subjects anyway).
MAX_SUBJECT_CHARS = 150


def render_text(shown: ShownDigest) -> str:
    """The plain-text part: reads on its own (every link written out)."""
    numbers = {
        story.id: n
        for n, story in enumerate(
            (s for cluster in shown.clusters for s in cluster.stories), start=1
        )
    }
    template = environment().get_template("digest.txt")
    return template.render(d=shown, number=lambda story: numbers[story.id])


def subject(title: str) -> str:
    """The subject line: the digest's title on one line, without control characters, and
    never read as an RFC 2047 encoded word (``=?utf-8?q?=0D=0A...?=`` in a search name
    would otherwise be decoded into the header): a word joiner keeps ``=`` and ``?``
    apart, invisibly."""
    text = "".join(" " if unicodedata.category(c) in REFUSED_CATEGORIES else c for c in title)
    text = " ".join(text.split()).replace("=?", "=\N{WORD JOINER}?")
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 1] + "…"


def _set(message: EmailMessage, name: str, value: str) -> None:
    problem = header_problem(name, value)
    if problem:
        raise ValueError(f"{name} header refused: {problem}")
    message[name] = value


def render_email(
    shown: ShownDigest,
    *,
    date: datetime,
    sender: str,
    to: list[str],
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    message_id_domain: str | None = None,
) -> EmailMessage:
    """The message, ready for ``smtplib.SMTP.send_message``.

    ``unsubscribe_url`` goes into ``List-Unsubscribe`` with ``List-Unsubscribe-Post``
    (RFC 8058: the mail client POSTs to it, no page to visit): the recipient's own
    one-click link when newsmon signs them, else the channel's configured URL.
    """
    message = EmailMessage(policy=SMTP)
    _set(message, "Subject", subject(shown.title))
    _set(message, "From", sender)
    _set(message, "To", ", ".join(to))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = make_msgid("digest", domain=message_id_domain)
    targets = []
    if unsubscribe_mailto:
        targets.append(f"<mailto:{unsubscribe_mailto}>")
    if unsubscribe_url:
        targets.append(f"<{unsubscribe_url}>")
    if targets:
        _set(message, "List-Unsubscribe", ", ".join(targets))
    if unsubscribe_url:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(render_text(shown), charset="utf-8")
    message.add_alternative(render_email_html(shown), subtype="html")
    return message
