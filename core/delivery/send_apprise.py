"""Any apprise target (Discord, Teams, Telegram, ntfy, Matrix, json://, ...), through
the apprise library as it is meant to be used: one :class:`apprise.Apprise` per send.

Its own retries are forced off (``retry=0`` on the plugin, whatever the URL says) so each
of our attempts is one real attempt and our records stay true. Before sending, the
plugin's host is resolved and refused if private unless allowlisted (hosts that do not
resolve are tokens in the URL's host position, e.g. ``discord://id/token``, which apprise
sends to the service's fixed public host). apprise reports only success or failure, so
a failure is transient; the warnings it logged during this call become the error text
(the caller redacts the channel's secrets from it and from apprise's log records).
"""

from __future__ import annotations

import logging

import apprise

from core.delivery.channels import AppriseConfig
from core.delivery.destination import check_host
from core.delivery.model import DigestView
from core.delivery.outcome import Outcome
from core.delivery.render_html import render_markdown
from core.errors import DestinationNotAllowed, FetchError
from core.fetch import GuardPolicy, Resolver
from core.masking import mask_url

#: apprise log lines kept in the error text.
MAX_LOG_CHARS = 500


def plugin_host(plugin: object) -> tuple[str, int] | None:
    """The host and port an apprise plugin contacts; None when it names no host, or when
    it posts to its service's fixed public endpoint (a class-level ``notify_url``) and the
    URL's host position holds a token: ``discord://1234/token`` must not be read as the
    numeric address 1234 (0.0.4.210) and refused."""
    fixed = getattr(type(plugin), "notify_url", None)
    if isinstance(fixed, str) and fixed.startswith("https://"):
        return None
    host = getattr(plugin, "host", None)
    if not isinstance(host, str) or not host:
        return None
    port = getattr(plugin, "port", None)
    secure = bool(getattr(plugin, "secure", False))
    return host, port if isinstance(port, int) else (443 if secure else 80)


def send_apprise(
    config: AppriseConfig,
    digest: DigestView,
    *,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
) -> Outcome:
    """Notify the apprise URL with the digest as Markdown."""
    plugin = apprise.Apprise.instantiate(config.url)
    if plugin is None:
        return Outcome.failed(f"not a valid apprise URL: {mask_url(config.url)}", permanent=True)
    plugin.retry = 0
    target = plugin_host(plugin)
    if target is not None:
        try:
            check_host(policy, *target, resolver)
        except DestinationNotAllowed as exc:
            return Outcome.failed(str(exc), permanent=True)
        except FetchError:
            pass  # the host position holds a token, not a host (see the module docstring)
    notifier = apprise.Apprise()
    notifier.add(plugin)
    result = notifier.notify(
        title=digest.title,
        body=render_markdown(digest),
        body_format=apprise.NotifyFormat.MARKDOWN,
        log_level=logging.WARNING,  # this call's own lines, never another thread's send
    )
    if result:
        return Outcome.sent(response="apprise: sent")
    lines = " | ".join(text for entry in result.logs() if (text := entry.message.strip()))
    return Outcome.failed(f"apprise: {lines or 'notification failed'}"[:MAX_LOG_CHARS])
