"""apprise targets of a supported service (ntfy, Gotify, Mattermost, json://, mailto://,
...; see :mod:`core.delivery.apprise_schemes`), through the apprise library as it is
meant to be used: one :class:`apprise.Apprise` per send.

The plugin is tamed before it sends: its own retries off (``retry=0``, whatever the URL
says: each of our attempts is one real attempt and our records stay true), redirects
off (a 3xx is a failure, as for webhooks), its socket timeouts and the whole call held
to the send's deadline. Its real target (``smtp=`` of a ``mailto://`` URL included) is
resolved and checked first for a clear early refusal; every connection it then makes,
by whatever library, is checked again at connect time by the outbound guard the caller
holds (:func:`core.delivery.deliveries.send_to_channel`). apprise reports only success,
failure or timeout: a failure is transient, a timeout ``unknown``; its log lines become
the error text (the caller redacts the channel's secrets from it and from apprise's
log records).
"""

from __future__ import annotations

import logging
import urllib.request

import apprise
from apprise.plugins import NotifyBase
from apprise.result import AppriseResultStatus

from core.delivery.apprise_schemes import supported_plugin
from core.delivery.channels import AppriseConfig
from core.delivery.destination import check_host
from core.delivery.outcome import Outcome
from core.delivery.presenting import Show
from core.delivery.render_html import render_markdown
from core.errors import DestinationNotAllowed, FetchError, ValidationError
from core.fetch import GuardPolicy, Resolver, time_left
from core.masking import mask_url

#: apprise log lines kept in the error text.
MAX_LOG_CHARS = 500
#: Proxy settings of the environment that ``requests`` (apprise's HTTP) would obey.
_PROXY_KEYS = ("http", "https", "all")


def plugin_host(plugin: object) -> tuple[str, int] | None:
    """The host and port an apprise plugin contacts; None when it names no host, or when
    it posts to its service's fixed public endpoint (a class-level ``notify_url``) and the
    URL's host position holds a token: ``discord://1234/token`` must not be read as the
    numeric address 1234 (0.0.4.210) and refused. An email plugin contacts its SMTP
    server (``smtp=``), not the mail domain in the host position."""
    fixed = getattr(type(plugin), "notify_url", None)
    if isinstance(fixed, str) and fixed.startswith("https://"):
        return None
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not isinstance(host, str) or not host:
        return None
    port = getattr(plugin, "port", None)
    secure = bool(getattr(plugin, "secure", False))
    return host, port if isinstance(port, int) else (443 if secure else 80)


def _proxy_in_environment(plugin: NotifyBase) -> str | None:
    """The proxy variable ``requests`` would send this plugin through, if one is set: the
    guard would see only the proxy's address, so newsmon never sends through one."""
    if getattr(plugin, "smtp_host", None):
        return None  # smtplib ignores proxy variables
    proxies = urllib.request.getproxies()
    return next((f"{key.upper()}_PROXY" for key in _PROXY_KEYS if proxies.get(key)), None)


def _refusal(plugin: NotifyBase, policy: GuardPolicy, resolver: Resolver | None) -> Outcome | None:
    """Why the plugin must not send at all, checked before it tries (``None``: it may)."""
    proxy = _proxy_in_environment(plugin)
    if proxy is not None:
        return Outcome.failed(
            f"destination not allowed: {proxy} is set and newsmon never sends through a proxy",
            permanent=True,
        )
    target = plugin_host(plugin)
    if target is not None:
        try:
            check_host(policy, *target, resolver)
        except DestinationNotAllowed as exc:
            return Outcome.failed(str(exc), permanent=True)
        except FetchError:
            pass  # the host position holds a token, not a host (see plugin_host)
    return None


def send_apprise(
    config: AppriseConfig,
    show: Show,
    *,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
) -> Outcome:
    """Notify the apprise URL with the digest as Markdown, within the current deadline."""
    try:
        plugin = supported_plugin(config.url)
    except ValidationError as exc:
        return Outcome.failed(f"{exc}: {mask_url(config.url)}", permanent=True)
    left = time_left()
    if left is not None and left <= 0:
        return Outcome.failed("apprise: the send's deadline passed before it started")
    plugin.retry = 0
    plugin.redirects = False
    if left is not None:
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout or left, left)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout or left, left)
    refused = _refusal(plugin, policy, resolver)
    if refused is not None:
        return refused
    notifier = apprise.Apprise()
    notifier.add(plugin)
    shown = show()
    result = notifier.notify(
        title=shown.title,
        body=render_markdown(shown),
        body_format=apprise.NotifyFormat.MARKDOWN,
        timeout=left or 0,  # apprise: 0 = no limit of its own
        log_level=logging.WARNING,  # this call's own lines, never another thread's send
    )
    if result:
        return Outcome.sent(response="apprise: sent")
    if result.status == AppriseResultStatus.TIMEOUT:
        return Outcome.unknown(f"apprise: no answer within the deadline ({left or 0:.3g} s)")
    lines = " | ".join(text for entry in result.logs() if (text := entry.message.strip()))
    return Outcome.failed(f"apprise: {lines or 'notification failed'}"[:MAX_LOG_CHARS])
