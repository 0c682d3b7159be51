"""The apprise services newsmon supports: a positive list, each one tested end to end.

apprise knows over a hundred services, some of which act on the machine newsmon runs on
(``syslog://``, ``windows://``, ``macosx://``, ``dbus://``, ``glib://``) or reach it through
parameters the address check cannot see before the plugin runs. A channel may use only
the schemes below, each tested against a local server speaking its protocol
(tests/integration/test_apprise_schemes.py). Anything else is refused at create and
update (422 on ``config.url``) and, for rows stored before, at send (permanent failure).
A scheme joins the list with its test.

Within a listed scheme, the parameters that make a plugin touch newsmon's own machine
are refused the same way: a Discord or Telegram ``template`` (a file loaded as the
message, whose content would go to the tenant's chat), email PGP keys read from paths
or generated and their discovery (``pgp``, ``pgppub``, ``pgpprv``, ``wkd``), and
``store`` (apprise's persistent storage; plugins are also given a memory-only asset).
"""

from __future__ import annotations

import re

import apprise
from apprise.common import PersistentStoreMode
from apprise.plugins import N_MGR
from apprise.utils.parse import parse_url

from core.errors import ValidationError

#: Supported schemes and the service each one reaches (the secure twin is TLS).
SUPPORTED_SCHEMES: dict[str, str] = {
    "json": "JSON POST to any URL",
    "jsons": "JSON POST to any URL (https)",
    "form": "form POST to any URL",
    "forms": "form POST to any URL (https)",
    "xml": "XML POST to any URL",
    "xmls": "XML POST to any URL (https)",
    "ntfy": "ntfy server",
    "ntfys": "ntfy server (https)",
    "gotify": "Gotify server",
    "gotifys": "Gotify server (https)",
    "mmost": "Mattermost incoming webhook",
    "mmosts": "Mattermost incoming webhook (https)",
    "mailto": "email over SMTP",
    "mailtos": "email over SMTP with STARTTLS or TLS",
    "discord": "Discord webhook",
    "tgram": "Telegram bot",
}
#: URL parameters (any case) that read or write files on newsmon's machine.
LOCAL_RESOURCE_PARAMS = frozenset({"template", "pgp", "pgppub", "pgpprv", "wkd", "store"})
#: The scheme as apprise reads it: letters and digits before ``://``.
_SCHEME = re.compile(r"^\s*([A-Za-z0-9]+)://")
#: What every plugin is built with: persistent storage in memory only, never on disk.
_ASSET = apprise.AppriseAsset(storage_mode=PersistentStoreMode.MEMORY)


def url_scheme(url: str) -> str:
    """The lower-cased scheme of an apprise URL (``""`` when it has none)."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def check_scheme(url: str) -> str:
    """Return ``url`` if its scheme is supported and it names no local resource; else
    raise ``ValueError`` saying why."""
    scheme = url_scheme(url)
    if scheme not in SUPPORTED_SCHEMES:
        named = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ValueError(
            f"{named} is not a supported apprise service; supported: "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        )
    # Read the parameters as apprise does ('&' and ';', any case, padded, '/#' as text).
    parsed = parse_url(url.replace("/#", "/%23"), verify_host=False)  # type: ignore[no-untyped-call]
    local = sorted(set(parsed["qsd"] if parsed else ()) & LOCAL_RESOURCE_PARAMS)
    if local:
        raise ValueError(
            f"the {', '.join(local)} parameter is not allowed: it reads or writes files "
            "on newsmon's machine"
        )
    return url


def supported_plugin(url: str) -> apprise.plugins.NotifyBase:
    """The apprise plugin of ``url``, if its scheme is on the list and apprise reads it the
    same way (its plugin class is the listed scheme's); else :class:`ValidationError`."""
    try:
        check_scheme(url)
    except ValueError as exc:
        raise ValidationError(str(exc), field="config.url") from None
    plugin = apprise.Apprise.instantiate(url, asset=_ASSET)
    if plugin is None:
        raise ValidationError("not a valid apprise URL", field="config.url")
    if type(plugin) is not N_MGR[url_scheme(url)]:
        raise ValidationError("not a supported apprise service", field="config.url")
    return plugin
