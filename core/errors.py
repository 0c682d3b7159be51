"""The one exception family of newsmon.

::

    NewsmonError
     ├── ConfigError          settings missing, malformed or contradictory (names the setting)
     ├── DatabaseUnavailable  the configured database cannot be reached
     ├── ValidationError      input from outside rejected (names the field)
     │    └── Conflict        valid input clashing with what exists (a taken name)
     ├── NotFound             no such object in the caller's organization
     ├── PermissionDenied     the caller lacks a permission (names it)
     ├── Forbidden            the caller may not do this whatever it holds (names why)
     ├── LimitReached         an organization's limit set by an operator (names it)
     ├── LeaseLost            a run was taken over after this worker's lease expired
     ├── SecretsError         a secret could not be sealed or opened (core.secrets)
     ├── LinkError            a digest link forged, altered or expired (core.delivery.digest_links)
     ├── FeedParseError       the body is not a feed at all (core.feeds.model)
     ├── MailError            the operator's mail relay refused or could not be reached
     ├── FetchError           an outbound request failed or was refused
     │    └── DestinationNotAllowed   the address policy refused the target
     │         └── ConnectNotAllowed  ... at connect time (also an OSError, for libraries)
     └── DeliveryError        a channel send failed (``permanent`` says whether to retry)

Every error carries a one-line, user-facing message; tracebacks are for bugs only.
"""

from __future__ import annotations


class NewsmonError(Exception):
    """Root of every error newsmon raises on purpose."""


class ConfigError(NewsmonError):
    """A setting is missing, malformed or contradicts another.

    Parameters:
      setting: the environment variable name, e.g. ``NEWSMON_DATABASE_URL``.
      problem: what is wrong with it, in a few words.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class DatabaseUnavailable(NewsmonError):
    """The configured database cannot be reached or refused the connection."""


class ValidationError(NewsmonError):
    """Input from outside was rejected; ``field`` names the offending field when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class Conflict(ValidationError):
    """Valid input that clashes with what exists, such as a name already taken."""


class NotFound(NewsmonError):
    """No such object exists in the caller's organization."""


class PermissionDenied(NewsmonError):
    """The caller lacks a permission; ``permission`` names it (``channels:write``)."""

    def __init__(self, permission: str) -> None:
        self.permission = permission
        super().__init__(f"missing permission {permission}")


class Forbidden(NewsmonError):
    """The caller may not do this whatever permissions it holds: acting on a stronger key,
    minting past its own limits, granting the owner role. ``fields`` pairs each offending
    field with the reason, e.g. ``("expiresAt", "later than this key's expiry")``."""

    def __init__(self, message: str, fields: list[tuple[str, str]] | None = None) -> None:
        self.fields = fields or []
        super().__init__(message)


class LimitReached(NewsmonError):
    """An organization reached a limit its operator set (core.usage.limits).

    Parameters:
      limit: the limit's name as stored and shown (``maxSearches``).
      value: the limit's value.
      message: one line naming the limit, its value and what reached it.
    """

    def __init__(self, limit: str, value: int, message: str) -> None:
        self.limit = limit
        self.value = value
        super().__init__(message)


class MailError(NewsmonError):
    """The operator's mail relay (``NEWSMON_SMTP_URL``) refused a system message or could
    not be reached; the message names the relay's host, never its credentials."""


class FetchError(NewsmonError):
    """An outbound HTTP request failed, timed out, or was refused by policy."""


class DestinationNotAllowed(FetchError):
    """The address policy refused the destination before any connection was made."""


class ConnectNotAllowed(DestinationNotAllowed, OSError):
    """The outbound guard refused a connection as it was made (core.fetch.outbound_guard).

    An ``OSError`` too, so that smtplib, ``requests`` and httpcore treat it as the failed
    connection it is and carry its message up."""


class DeliveryError(NewsmonError):
    """A channel send failed; ``permanent`` errors are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)
