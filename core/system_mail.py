"""System mail through the operator's own relay (``NEWSMON_SMTP_URL``): the short plain
messages newsmon itself sends (invitations), never tenant digests.

The relay is configured by the operator, not by a tenant, so it is not held to the tenant
outbound address policy (it may well listen on localhost); its timeout is short, since a
request waits on it. Nothing here logs a message or its body: invitations carry tokens.
Errors name the relay's host and port, never its credentials.

``NEWSMON_SMTP_URL`` is ``smtp://[user[:password]@]host[:port][?security=...]`` with
``security`` one of ``starttls`` (the default: refused if the relay does not offer it),
``tls`` (what ``smtps://`` means) or ``none`` (a relay on the same host); user and
password are percent-encoded. Default ports: 587, 465, 25.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from core.errors import ConfigError, MailError

if TYPE_CHECKING:
    from core.config import Settings

#: Seconds a connect or a reply of the relay may take.
SYSTEM_MAIL_TIMEOUT_S = 10.0
#: Default port of each ``security``.
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
URL_SETTING = "NEWSMON_SMTP_URL"
FROM_SETTING = "NEWSMON_MAIL_FROM"


@dataclass(frozen=True)
class SmtpRelay:
    """Where system mail goes, and how to log in (the password never in a repr)."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpRelay:
    """Read ``NEWSMON_SMTP_URL`` (errors never repeat the URL: it may hold a password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(URL_SETTING, "expected smtp://[user:password@]host[:port]")
    query = parse_qs(parts.query)
    if set(query) - {"security"}:
        raise ConfigError(URL_SETTING, "the only query parameter is security")
    implied = "tls" if parts.scheme == "smtps" else "starttls"
    security = query.get("security", [implied])[-1]
    if security not in DEFAULT_PORTS or (parts.scheme == "smtps" and security != "tls"):
        raise ConfigError(URL_SETTING, "security must be starttls, tls or none (smtps: tls)")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(URL_SETTING, "the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError(URL_SETTING, "names no host")
    return SmtpRelay(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[security],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def parse_sender(value: str) -> str:
    """Check ``NEWSMON_MAIL_FROM`` (``Name <address>`` or an address) and format it."""
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(FROM_SETTING, "must be one line")
    name, address = parseaddr(value)
    local, at, domain = address.partition("@")
    if not (at and local and "." in domain):
        raise ConfigError(FROM_SETTING, "expected an address, e.g. newsmon <noreply@example.com>")
    return formataddr((name, address))


def one_line(text: str) -> str:
    """``text`` fit for a header: whitespace (line breaks included) collapsed to spaces."""
    return " ".join(text.split())


@dataclass(frozen=True)
class SystemMailer:
    """Sends one plain-text message at a time through the operator's relay."""

    relay: SmtpRelay
    sender: str
    timeout_s: float = SYSTEM_MAIL_TIMEOUT_S
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SystemMailer | None:
        """The configured mailer; None when ``NEWSMON_SMTP_URL`` is not set."""
        if not settings.smtp_url:
            return None
        return cls(parse_smtp_url(settings.smtp_url), parse_sender(settings.mail_from))

    def compose(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = one_line(subject)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=parseaddr(self.sender)[1].partition("@")[2])
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        return message

    def send(self, to: str, subject: str, body: str) -> None:
        """Hand the message to the relay, or raise :class:`MailError` saying why."""
        relay = self.relay
        where = f"the mail relay {relay.host}:{relay.port}"
        message = self.compose(to, subject, body)
        context = self.ssl_context or ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if relay.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    relay.host, relay.port, timeout=self.timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(relay.host, relay.port, timeout=self.timeout_s)
            with smtp:
                if relay.security == "starttls":
                    smtp.starttls(context=context)  # raises if the relay does not offer it
                if relay.username:
                    smtp.login(relay.username, relay.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise MailError(f"{where} refused the recipient: {code} {_text(reply)}") from None
        except smtplib.SMTPResponseException as exc:
            raise MailError(f"{where} refused: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"{where} cannot be reached: {type(exc).__name__}") from None


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return one_line(text)[:200]
