"""Masking of secrets for responses, records and logs (display only; sealing is in
:mod:`core.secrets`).

A channel URL that is itself the secret (a Slack or Discord webhook, an apprise URL, an
ntfy topic) is shown by :func:`mask_url`: scheme and a real host name kept, every other
part replaced, whatever it looks like. Text that may echo a secret (a target's error
page, apprise's log lines) goes through :func:`redact` with the secret's parts
(:func:`url_secrets`) before it is recorded, and :data:`LOG_REDACTOR` does the same to a
library's log records while a channel sends.

apprise's own helpers were measured against real-shaped URLs and not used: its
``url(privacy=True)`` and ``cwe312_url`` both print an ntfy topic and a Telegram chat id
in clear, keep the first and last character of each token (``T...D``), and
``url(privacy=True)`` answers nothing for URLs it cannot load (``msteams://`` in 2.3).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import quote, unquote

#: What :func:`mask` puts in place of a secret.
MASK_SUFFIX = "…(masked)"
#: Replacement for a secret part of a URL (apprise's ``PrivacyMode.Secret`` spelling).
URL_MASK = "****"
#: Leading characters :func:`mask` keeps as a hint ...
MASK_VISIBLE_CHARS = 3
#: ... but only for values at least this long, so the hint is at most a quarter of it.
MASK_HINT_MIN_LENGTH = 4 * MASK_VISIBLE_CHARS
#: Shortest secret part :func:`redact` replaces in free text: shorter ones (a one-digit
#: path segment) would shred the text while hiding next to nothing.
REDACT_MIN_CHARS = 4
#: Leading path segments shown in clear, by host (the host or any subdomain of it): the
#: fixed words of well-known webhook URLs, so a masked URL stays recognisable
#: (``https://hooks.slack.com/services/****/****/****``). Everything after them is masked.
PUBLIC_PATH_WORDS: Mapping[str, frozenset[str]] = {
    "hooks.slack.com": frozenset({"services", "workflows", "triggers"}),
    "discord.com": frozenset({"api", "webhooks"}),
    "discordapp.com": frozenset({"api", "webhooks"}),
    "webhook.office.com": frozenset({"webhookb2"}),
    "outlook.office.com": frozenset({"webhook"}),
    "logic.azure.com": frozenset({"workflows"}),
}

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
# A host name with a letters-only top-level label, an IPv4 or bracketed IPv6 address, or
# localhost, with an optional port. A token in apprise's host position
# (``discord://1234/…``, ``ntfy://topic``, ``tgram://bot:token/…``) never matches.
_HOST_RE = re.compile(
    r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"|localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)
_PARAM_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_PIECE_SEPARATORS_RE = re.compile(r"[:@]")


def mask(value: str) -> str:
    """Mask a secret for logs and responses: ``"hooks…"`` becomes ``"hoo…(masked)"``.

    Values shorter than ``MASK_HINT_MIN_LENGTH`` show nothing at all.
    """
    if len(value) < MASK_HINT_MIN_LENGTH:
        return MASK_SUFFIX
    return value[:MASK_VISIBLE_CHARS] + MASK_SUFFIX


def mask_fields(config: Mapping[str, object], fields: Collection[str]) -> dict[str, object]:
    """Return a copy of ``config`` with the named fields (when set) replaced by :func:`mask`."""
    shown = dict(config)
    for name in fields:
        value = shown.get(name)
        if value is not None:
            shown[name] = mask(value) if isinstance(value, str) else MASK_SUFFIX
    return shown


class _Masker:
    """Builds a URL's masked form and collects the parts it hid."""

    def __init__(self) -> None:
        self.hidden: list[str] = []

    def hide(self, part: str) -> str:
        if not part:
            return part
        self.hidden.append(part)
        return URL_MASK


def _public_words(hostport: str) -> frozenset[str]:
    host = hostport.rsplit(":", 1)[0].lower() if "]" not in hostport else ""
    for domain, words in PUBLIC_PATH_WORDS.items():
        if host == domain or host.endswith("." + domain):
            return words
    return frozenset()


def _mask(url: str) -> tuple[str, list[str]]:
    """The masked form of ``url`` and the parts it hid (see :func:`mask_url`)."""
    masker = _Masker()
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME_RE.fullmatch(scheme):
        return masker.hide(url) or URL_MASK, masker.hidden
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    tail, hash_, fragment = tail.partition("#")
    path, qmark, query = tail.partition("?")

    userinfo, at, hostport = netloc.rpartition("@")
    out = scheme + "://"
    if at:
        user, colon, password = userinfo.partition(":")
        out += masker.hide(user) + colon + masker.hide(password) + "@"
    is_host = bool(_HOST_RE.fullmatch(hostport))
    out += hostport if is_host else masker.hide(hostport)
    public = _public_words(hostport) if is_host else frozenset()
    segments = path.split("/")
    for index, segment in enumerate(segments):
        leading = all(s in public for s in segments[1 : index + 1])
        segments[index] = segment if leading else masker.hide(segment)
    out += "/".join(segments)
    if qmark:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            shown = name if _PARAM_NAME_RE.fullmatch(name) else masker.hide(name)
            pairs.append(shown + eq + masker.hide(value))
        out += "?" + "&".join(pairs)
    return out + hash_ + masker.hide(fragment), masker.hidden


def mask_url(url: str) -> str:
    """Mask a secret URL (a webhook, an apprise URL), keeping its shape.

    Kept: the scheme, a host that is a host name or an IP address (with its port), query
    parameter names, and the fixed leading words of well-known webhook paths
    (:data:`PUBLIC_PATH_WORDS`). Masked, whatever they look like: user and password,
    a token in the host position (``discord://id/token``), every path segment, every
    query value and the fragment. A value that is not a URL is masked whole. Masking a
    masked URL gives it back unchanged.
    """
    return _mask(url)[0]


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that :func:`mask_url` hides, for :func:`redact`: each part,
    its pieces around ``:`` and ``@`` (``bot-id:token``), percent-decoded and -encoded."""
    found: set[str] = set()
    for part in _mask(url)[1]:
        for piece in (part, *_PIECE_SEPARATORS_RE.split(part)):
            found.update((piece, unquote(piece), quote(piece, safe="")))
    found.discard(URL_MASK)
    # An IP address (``mailto://...?smtp=127.0.0.1``) names a server, never a token: the
    # address policy's own errors must keep saying which address they refused.
    return sorted(piece for piece in found if not _is_ip(piece))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret (at least ``REDACT_MIN_CHARS`` long) in
    ``text`` with ``URL_MASK``; longer secrets first, so a part never shields its whole.

    A text that ends in the start of a secret (an excerpt cut short) loses that end too.
    """
    ordered = sorted({s for s in secrets if len(s) >= REDACT_MIN_CHARS}, key=len, reverse=True)
    for secret in ordered:
        text = text.replace(secret, URL_MASK)
    for secret in ordered:
        for end in range(len(secret) - 1, REDACT_MIN_CHARS - 1, -1):
            if text.endswith(secret[:end]):
                return text[:-end] + URL_MASK
    return text


class SecretLogFilter(logging.Filter):
    """Redacts the secrets of the sends in progress (:meth:`hiding`) from the records of
    the loggers it is attached to, before any handler (or a library's own capture) sees
    them. Process-wide rather than per thread: libraries log from their own threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()

    @contextmanager
    def hiding(self, secrets: Iterable[str]) -> Iterator[None]:
        """Redact ``secrets`` from filtered records until the block ends."""
        held = [s for s in set(secrets) if len(s) >= REDACT_MIN_CHARS]
        with self._lock:
            self._active.update(held)
        try:
            yield
        finally:
            with self._lock:
                self._active.subtract(held)
                self._active = +self._active  # drop secrets no send holds any more

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            active = list(self._active)
        if active:
            message = record.getMessage()
            cleaned = redact(message, active)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


#: The filter :func:`core.logs.quiet_secret_loggers` attaches to apprise's logger.
LOG_REDACTOR = SecretLogFilter()
