"""The one result type of every sender, and the HTTP status -> outcome mapping.

- ``sent``: the target confirmed (2xx, SMTP 250, apprise success, file written).
- ``failed``: the target refused or could not be reached; ``permanent`` says whether a
  retry can help, ``retry_after`` is the target's own wish (429/503 ``Retry-After``) and
  ``broken`` that the channel itself is gone (410, Slack ``no_service``).
- ``unknown``: the request may have arrived but no answer came (timeout mid-send).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from core.errors import DestinationNotAllowed, FetchError
from core.masking import redact

#: Characters of a target's response body kept on the delivery row.
MAX_RESPONSE_EXCERPT = 500
#: Longest ``Retry-After`` honoured (a day); a larger one is clamped.
MAX_RETRY_AFTER_S = 86_400.0
#: Statuses worth retrying besides 5xx: timeout, too early, rate limited.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
#: Statuses meaning the endpoint is gone for good: the channel is marked broken.
GONE_STATUSES = frozenset({410})

Kind = Literal["sent", "failed", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What one send attempt achieved."""

    kind: Kind
    error: str | None = None
    permanent: bool = False
    broken: bool = False
    retry_after: float | None = None
    status: int | None = None
    response: str | None = None

    def __post_init__(self) -> None:
        # Both texts are stored, and PostgreSQL text cannot hold NUL, which a target's
        # answer (or an error echoing it) may: shown as the replacement character.
        for name in ("error", "response"):
            text = getattr(self, name)
            if text and "\x00" in text:
                object.__setattr__(self, name, text.replace("\x00", "\ufffd"))

    @classmethod
    def sent(cls, status: int | None = None, response: str | None = None) -> Outcome:
        return cls("sent", status=status, response=response)

    @classmethod
    def failed(
        cls,
        error: str,
        *,
        permanent: bool = False,
        broken: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        response: str | None = None,
    ) -> Outcome:
        return cls(
            "failed",
            error=error,
            permanent=permanent or broken,
            broken=broken,
            retry_after=retry_after,
            status=status,
            response=response,
        )

    @classmethod
    def unknown(cls, error: str) -> Outcome:
        return cls("unknown", error=error)

    def redacted(self, secrets: Collection[str]) -> Outcome:
        """This outcome with ``secrets`` removed from its error and response texts (a
        target's error page or a library's log line may echo the URL or token)."""
        return replace(
            self,
            error=redact(self.error, secrets) if self.error else self.error,
            response=redact(self.response, secrets) if self.response else self.response,
        )


def excerpt(body: bytes) -> str:
    """The start of a response body as text, for the delivery record."""
    return body[: MAX_RESPONSE_EXCERPT * 4].decode("utf-8", "replace")[:MAX_RESPONSE_EXCERPT]


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def from_http_status(status: int, headers: httpx.Headers, body: bytes, now: datetime) -> Outcome:
    """Map an HTTP answer to an outcome. Redirects are failures: never followed, since a
    signed payload must reach the URL its owner configured."""
    text = excerpt(body)
    if 200 <= status < 300:
        return Outcome.sent(status, text)
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if status in GONE_STATUSES:
        return Outcome.failed(
            f"HTTP {status}: endpoint gone", broken=True, status=status, response=text
        )
    if 300 <= status < 400:
        where = headers.get("location", "")
        return Outcome.failed(
            f"HTTP {status}: redirect to {where[:200]!r} not followed", status=status, response=text
        )
    transient = status in TRANSIENT_STATUSES or status >= 500
    return Outcome.failed(
        f"HTTP {status}",
        permanent=not transient,
        retry_after=retry_after,
        status=status,
        response=text,
    )


def from_fetch_error(exc: FetchError) -> Outcome:
    """Map a guarded-client error: refused or never connected -> failed; the connection
    broke or timed out after the request may have been sent -> unknown."""
    if isinstance(exc, DestinationNotAllowed):
        return Outcome.failed(str(exc), permanent=True)
    cause = exc.__cause__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Outcome.failed(str(exc))
    if cause is None and "invalid URL" in str(exc):
        return Outcome.failed(str(exc), permanent=True)
    return Outcome.unknown(str(exc))
