"""Logging setup: one line per record, as text or JSON (for log shippers)."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from core.masking import LOG_REDACTOR

#: Libraries that log request URLs or payloads below WARNING. A channel's URL is its
#: secret (a Slack or Discord webhook, an ntfy topic), so these never log below WARNING.
URL_LOGGING_LIBRARIES = ("httpx", "httpcore", "urllib3", "requests", "apprise")
#: apprise quotes URLs and topics in its warnings too; while a channel sends, that
#: channel's secrets are redacted from its records (:data:`core.masking.LOG_REDACTOR`).
APPRISE_LOGGER = "apprise"
#: uvicorn's access log: one line per request with its path and query string.
ACCESS_LOGGER = "uvicorn.access"
#: A search's feed token as it appears in a feed URL (``?token=nmf_...``).
_FEED_TOKEN = re.compile(r"\bnmf_[A-Za-z0-9]+")
#: Record attributes that are not ``extra=`` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; the CLI prints the outcome itself.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    quiet_secret_loggers(root.level)


def quiet_secret_loggers(level: int = logging.INFO) -> None:
    """Keep channel secrets out of the process log (see ``URL_LOGGING_LIBRARIES`` and
    ``APPRISE_LOGGER``); ``level`` is the root level."""
    for name in URL_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, level))
    apprise_log = logging.getLogger(APPRISE_LOGGER)
    if LOG_REDACTOR not in apprise_log.filters:
        apprise_log.addFilter(LOG_REDACTOR)
    access_log = logging.getLogger(ACCESS_LOGGER)
    if FEED_TOKEN_MASK not in access_log.filters:
        access_log.addFilter(FEED_TOKEN_MASK)


class FeedTokenMask(logging.Filter):
    """Masks feed tokens in access log lines: a feed URL carries its token (feed readers
    send no header), and a token is as secret as an API key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _FEED_TOKEN.sub("nmf_***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _FEED_TOKEN.sub("nmf_***", record.msg)
        return True


#: The filter :func:`quiet_secret_loggers` attaches to uvicorn's access log.
FEED_TOKEN_MASK = FeedTokenMask()
