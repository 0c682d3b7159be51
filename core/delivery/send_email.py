"""Email over SMTP with the standard library's :mod:`smtplib`.

``tls`` wraps the connection from the start (port 465), ``starttls`` upgrades it (587)
and fails if the server does not offer STARTTLS (never silently in clear), ``none`` is
for local relays. The server's host is checked against the address policy first, as
webhook targets are, and smtplib's own connect is checked again by the caller's outbound
guard (a DNS answer that changed since is refused). Every read and write ends by the
send's deadline, not only each one by the socket timeout. Reply codes: 5xx is permanent
(550 mailbox unavailable: no retry), 4xx transient (451: retried). Losing the connection
after the message was handed over is ``unknown``: the server may have queued it.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from core.delivery.channels import EmailConfig
from core.delivery.destination import check_host
from core.delivery.outcome import Outcome
from core.delivery.presenting import Show
from core.delivery.render_email import render_email
from core.errors import FetchError
from core.fetch import GuardPolicy, Resolver, time_left

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

#: Seconds an SMTP connect or reply may take.
SMTP_TIMEOUT_S = 30.0
#: Reply codes from this on are permanent failures.
PERMANENT_SMTP_CODE = 500
#: A failure this close to the deadline is reported as the deadline.
_DEADLINE_SLACK_S = 0.05


class _DeadlineSession(smtplib.SMTP):
    """An SMTP session whose connect, every command and every reply end by the current
    deadline (:func:`~core.fetch.time_left`): a server answering one byte at a time cannot
    stretch a send past it."""

    def _left(self, timeout: float) -> float:
        left = time_left()
        if left is None:
            return timeout
        if left <= 0:
            raise TimeoutError("send deadline exceeded")
        return min(timeout, left)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, self._left(timeout))  # type: ignore[misc]
        return sock

    def send(self, s: Buffer | str) -> None:
        if self.sock is not None:
            self.sock.settimeout(self._left(self.timeout))
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.sock is not None:
            self.sock.settimeout(self._left(self.timeout))
        return super().getreply()


class _DeadlineSSLSession(_DeadlineSession, smtplib.SMTP_SSL):
    """:class:`_DeadlineSession` over implicit TLS."""


def _from_code(code: int, message: bytes | str, stage: str) -> Outcome:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    error = f"SMTP {code} at {stage}: {text}"[:500]
    return Outcome.failed(error, permanent=code >= PERMANENT_SMTP_CODE, status=code)


def _messages(
    config: EmailConfig, show: Show, date: datetime, *, per_recipient: bool
) -> list[EmailMessage]:
    """One message for all recipients, or (with one-click links) one per recipient, each
    with its own unsubscribe link and only its own address in ``To``."""
    groups = [[address] for address in config.to] if per_recipient else [list(config.to)]
    messages = []
    for to in groups:
        shown = show(
            recipient=to[0] if per_recipient else None, unsubscribe_url=config.unsubscribeUrl
        )
        messages.append(
            render_email(
                shown,
                date=date,
                sender=config.sender,
                to=to,
                unsubscribe_url=shown.unsubscribe_url,
                unsubscribe_mailto=config.unsubscribeMailto,
            )
        )
    return messages


def send_email(  # noqa: PLR0911, PLR0912  (one return per SMTP outcome)
    config: EmailConfig,
    show: Show,
    *,
    date: datetime,
    policy: GuardPolicy,
    per_recipient: bool = False,
    resolver: Resolver | None = None,
    timeout_s: float = SMTP_TIMEOUT_S,
    ssl_context: ssl.SSLContext | None = None,
) -> Outcome:
    """Send the digest to every recipient over one SMTP connection: one message, or one
    per recipient (``per_recipient``: each carries its own one-click unsubscribe)."""
    try:
        check_host(policy, config.host, config.port, resolver)
    except FetchError as exc:
        return Outcome.failed(str(exc), permanent="not allowed" in str(exc))
    messages = _messages(config, show, date, per_recipient=per_recipient)
    context = ssl_context or ssl.create_default_context()
    handed_over = False
    stage = "connect"
    refused: dict[str, tuple[int, bytes]] = {}
    sent = 0
    try:
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = _DeadlineSSLSession(config.host, config.port, timeout=timeout_s, context=context)
        else:
            smtp = _DeadlineSession(config.host, config.port, timeout=timeout_s)
        with smtp:
            if config.security == "starttls":
                stage = "STARTTLS"
                smtp.starttls(context=context)  # raises if the server does not offer it
            if config.username and config.password:
                stage = "AUTH"
                smtp.login(config.username, config.password)
            stage = "DATA"
            for message in messages:
                handed_over = True
                try:
                    refused.update(smtp.send_message(message))
                except smtplib.SMTPRecipientsRefused as exc:
                    if len(messages) == 1:
                        raise
                    refused.update(exc.recipients)
                    smtp.rset()
                    continue
                sent += 1
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        return _from_code(code, text, "RCPT")
    except smtplib.SMTPNotSupportedError as exc:
        return Outcome.failed(f"SMTP server does not support {stage}: {exc}", permanent=True)
    except smtplib.SMTPResponseException as exc:
        outcome = _from_code(exc.smtp_code, exc.smtp_error, stage)
        if sent:  # as with Slack: a retry sends again to those who already have it
            return Outcome.failed(
                f"{outcome.error} (after {sent} of {len(messages)} messages were accepted)",
                permanent=outcome.permanent,
                status=outcome.status,
            )
        return outcome
    except (smtplib.SMTPException, OSError) as exc:
        error = f"SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}"[:500]
        left = time_left()
        if left is not None and left <= _DEADLINE_SLACK_S:
            error = f"SMTP {config.host}:{config.port}: no answer by the deadline at {stage}"
        return Outcome.unknown(error) if handed_over else Outcome.failed(error)
    if not sent and refused:
        code, text = next(iter(refused.values()))
        return _from_code(code, text, "RCPT")
    if refused:
        listed = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in refused.items())
        return Outcome.sent(250, f"accepted; refused recipients: {listed}"[:500])
    return Outcome.sent(250, f"accepted for {len(config.to)} recipient(s)")
