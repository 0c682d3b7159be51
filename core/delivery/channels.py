"""Channel configuration per type (validated with pydantic) and its secrets at rest.

Secret fields are sealed with the :class:`~core.secrets.Keyring` (AES-GCM, associated data
``organizationId|channelId``) before a config reaches the database, so the ``config``
column never holds a webhook token, SMTP password or apprise URL in clear; a URL that is
itself the secret is kept beside its seal as ``urlMasked`` for display. Responses get
:func:`public_config` (masked), senders get :func:`open_config` (clear).

The keyring comes from ``NEWSMON_ENCRYPTION_KEYS``; in embedded mode without one, a key is
generated once into ``<data_dir>/encryption.key`` (mode 0600) so a newcomer needs no setup.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from core.config import Settings
from core.delivery.apprise_schemes import check_scheme
from core.delivery.mail_headers import header_problem
from core.delivery.wait_settings import ZoneName
from core.errors import ConfigError, ValidationError
from core.masking import mask_fields, mask_url, url_secrets
from core.secrets import (
    KEYS_SETTING,
    Keyring,
    channel_aad,
    generate_key_string,
    open_fields,
    parse_keys,
    seal_fields,
)

#: File name of the generated embedded-mode key inside ``data_dir``.
KEY_FILE_NAME = "encryption.key"
#: Permissions of the generated key file: owner read/write only.
KEY_FILE_MODE = 0o600
#: Prefix of Standard Webhooks secrets (base64 of the key follows).
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
#: Most recipients one email channel may have.
MAX_EMAIL_RECIPIENTS = 50
#: One folder name of a file channel's ``directory``: never ``.``/``..`` or hidden.
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
#: Most folder levels a file channel's ``directory`` may have.
MAX_FILE_FOLDER_DEPTH = 4


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: IANA zone the channel's digests show times in (unset: the search's digest zone).
    timezone: ZoneName | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


#: An http(s) URL.
HttpUrl = Annotated[
    str, AfterValidator(_http_url), Field(min_length=1, json_schema_extra={"format": "http-url"})
]
#: An email address as it goes into a header (``Name <a@example.com>`` or ``a@example.com``).
MailAddress = Annotated[str, Field(min_length=3, json_schema_extra={"format": "email-address"})]
#: A webhook secret: ``whsec_`` and the base64 of the key.
WebhookSecret = Annotated[str, Field(json_schema_extra={"pattern": "^whsec_[^\\u0000]*$"})]


class SlackConfig(_Config):
    """Slack incoming webhook (the URL is the secret)."""

    url: HttpUrl


class EmailConfig(_Config):
    """SMTP submission; ``security`` is ``starttls`` (587), ``tls`` (465) or ``none``."""

    host: str = Field(min_length=1, json_schema_extra={"format": "host"})
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: MailAddress = Field(alias="from", min_length=3)
    to: list[MailAddress] = Field(min_length=1, max_length=MAX_EMAIL_RECIPIENTS)
    unsubscribeUrl: (
        Annotated[str, Field(min_length=1, json_schema_extra={"format": "http-url"})] | None
    ) = None
    unsubscribeMailto: MailAddress | None = None
    #: Recipients who left through a digest's one-click unsubscribe (newest last).
    unsubscribed: list[MailAddress] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _header_text("From", value)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n,<>"):
                raise ValueError(f"not an email address: {address!r}")
            _header_text("To", address)
        return value

    @field_validator("unsubscribeUrl", "unsubscribeMailto")
    @classmethod
    def _unsubscribe(cls, value: str | None) -> str | None:
        # Each is one <...> entry of List-Unsubscribe: no brackets, commas or spaces.
        if value is None:
            return None
        if any(c in "<>," or c.isspace() for c in value):
            raise ValueError("must not contain spaces, commas or angle brackets")
        return _header_text("List-Unsubscribe", value)


def _header_text(header: str, value: str) -> str:
    """``value`` if it can go into the ``header`` of an email (no header injection)."""
    problem = header_problem(header, value)
    if problem:
        raise ValueError(problem)
    return value


class WebhookConfig(_Config):
    """Signed JSON POST; ``previousSecret`` also signs during a secret rotation."""

    url: HttpUrl
    secret: WebhookSecret
    previousSecret: WebhookSecret | None = None

    @field_validator("secret", "previousSecret")
    @classmethod
    def _whsec(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(WEBHOOK_SECRET_PREFIX):
            raise ValueError(f"must start with {WEBHOOK_SECRET_PREFIX}")
        return value


class AppriseConfig(_Config):
    """An apprise URL of a supported service (``ntfy://...``, ``json://...``; the list is
    :data:`~core.delivery.apprise_schemes.SUPPORTED_SCHEMES`)."""

    url: Annotated[str, AfterValidator(check_scheme)] = Field(
        min_length=4, json_schema_extra={"format": "apprise-url"}
    )


def _relative_folder(value: str) -> str:
    parts = value.split("/")
    if len(parts) > MAX_FILE_FOLDER_DEPTH or not all(_FOLDER_NAME.fullmatch(p) for p in parts):
        raise ValueError(
            "must be a relative folder name below the organization's file channel folder: "
            "letters, digits, '.', '_' and '-', parts joined by '/', none starting with '.' "
            f"(no '..', no absolute path), at most {MAX_FILE_FOLDER_DEPTH} parts"
        )
    return value


class FileConfig(_Config):
    """Digests written as Markdown and HTML files into ``directory``, a folder relative to
    ``<NEWSMON_FILE_CHANNEL_ROOT>/<organizationId>/`` (see :mod:`core.delivery.send_file`)."""

    directory: Annotated[str, AfterValidator(_relative_folder)] = Field(
        min_length=1, json_schema_extra={"format": "directory"}
    )
    formats: list[Literal["markdown", "html"]] = Field(default=["markdown", "html"], min_length=1)


ChannelConfig = SlackConfig | EmailConfig | WebhookConfig | AppriseConfig | FileConfig

#: Config model of each channel type.
CONFIG_MODELS: dict[str, type[_Config]] = {
    "slack": SlackConfig,
    "email": EmailConfig,
    "webhook": WebhookConfig,
    "apprise": AppriseConfig,
    "file": FileConfig,
}
#: Fields sealed at rest, per channel type.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "slack": ("url",),
    "email": ("password",),
    "webhook": ("url", "secret", "previousSecret"),
    "apprise": ("url",),
    "file": (),
}
#: Secret URL fields whose masked form is stored beside the seal as ``urlMasked``.
MASKED_URL_FIELD = "urlMasked"


def validate_config(type_: str, raw: dict[str, Any]) -> ChannelConfig:
    """Validate a channel config in clear; raise :class:`ValidationError` naming the field."""
    model = CONFIG_MODELS.get(type_)
    if model is None:
        raise ValidationError(f"unknown channel type {type_!r}", field="type")
    try:
        config = model.model_validate(raw)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ValidationError(message, field=f"config.{where}" if where else "config") from None
    return config  # type: ignore[return-value]


def seal_config(
    type_: str, config: ChannelConfig, keyring: Keyring, organization_id: str, channel_id: str
) -> dict[str, Any]:
    """The JSON stored in ``channels.config``: secret fields sealed for this channel."""
    data = config.model_dump(by_alias=True, exclude_none=True)
    if "url" in SECRET_FIELDS[type_] and isinstance(data.get("url"), str):
        data[MASKED_URL_FIELD] = mask_url(data["url"])
    aad = channel_aad(organization_id, channel_id)
    return seal_fields(data, SECRET_FIELDS[type_], keyring, aad)


def open_config(
    type_: str, stored: dict[str, Any], keyring: Keyring, organization_id: str, channel_id: str
) -> ChannelConfig:
    """The config in clear for a sender (raises ``SecretsError`` if a seal does not open)."""
    aad = channel_aad(organization_id, channel_id)
    opened = open_fields(stored, SECRET_FIELDS[type_], keyring, aad)
    opened.pop(MASKED_URL_FIELD, None)
    return validate_config(type_, opened)


def public_config(type_: str, stored: dict[str, Any]) -> dict[str, Any]:
    """What an API response shows: secrets masked (a secret URL by its masked form,
    masked again so a form stored under older, laxer rules shows no more than today's)."""
    shown = mask_fields(stored, SECRET_FIELDS[type_])
    if MASKED_URL_FIELD in shown:
        shown["url"] = mask_url(str(shown.pop(MASKED_URL_FIELD)))
    return shown


def config_secrets(type_: str, config: ChannelConfig) -> list[str]:
    """Every secret of a config in clear, for :func:`~core.masking.redact`: its sealed
    fields, and the parts of a secret URL that its masked form hides."""
    data = config.model_dump(by_alias=True, exclude_none=True)
    found: list[str] = []
    for name in SECRET_FIELDS[type_]:
        value = data.get(name)
        if isinstance(value, str):
            found.append(value)
            found.extend(url_secrets(value) if name == "url" else ())
    return found


def _key_file(data_dir: Path) -> str:
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        except FileExistsError:
            pass  # another process of the embedded system created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(generate_key_string() + "\n")
    return path.read_text().strip()


def load_keyring(settings: Settings) -> Keyring:
    """The keyring for channel secrets: from settings, or the embedded key file.

    Production mode without ``NEWSMON_ENCRYPTION_KEYS`` raises :class:`ConfigError`.
    """
    if settings.encryption_keys:
        return parse_keys(settings.encryption_keys)
    if settings.mode == "production":
        raise ConfigError(KEYS_SETTING, "production mode needs an encryption key")
    return parse_keys(_key_file(settings.data_dir))
