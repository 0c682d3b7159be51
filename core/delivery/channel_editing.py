"""Creating, changing and deleting an organization's channels, and linking them to searches.

A config is validated per type (:func:`~core.delivery.channels.validate_config`) and its
secrets sealed for ``organizationId|channelId`` before it reaches the database. A webhook,
Slack or apprise target whose host resolves to a private address is refused at create and
update (422, row 14) unless the operator allowlisted it; a host that does not resolve is
accepted (the sender checks again at every delivery, and every connection is checked
when it is made, so a later DNS change is refused there). An apprise URL must name a
supported service (:mod:`core.delivery.apprise_schemes`); a ``file`` channel needs the
file channel folder (off in production mode unless ``NEWSMON_FILE_CHANNEL_ROOT`` is
set). An update replaces the whole config: secrets are write-only, so a client that
changes a field sends the secrets again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Channel, NewsChannel
from core.db.scoped import get_owned
from core.delivery import channels as ch
from core.delivery.apprise_schemes import supported_plugin
from core.delivery.destination import check_host
from core.delivery.send_apprise import plugin_host
from core.delivery.send_file import FILE_CHANNEL_OFF
from core.errors import DestinationNotAllowed, FetchError, NotFound, ValidationError
from core.fetch import GuardPolicy, Resolver
from core.ids import new_id
from core.masking import LOG_REDACTOR, url_secrets
from core.secrets import Keyring

#: Default port of each URL scheme a channel target may use.
DEFAULT_PORTS = {"https": 443, "http": 80}


def _target(type_: str, config: ch.ChannelConfig) -> tuple[str, int] | None:
    if isinstance(config, ch.AppriseConfig):
        with LOG_REDACTOR.hiding(url_secrets(config.url)):  # apprise logs what it loads
            return plugin_host(supported_plugin(config.url))
    if isinstance(config, ch.SlackConfig | ch.WebhookConfig):
        parts = urlsplit(config.url)
        if not parts.hostname:
            raise ValidationError("must name a host", field="config.url")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValidationError("invalid port", field="config.url") from None
        return parts.hostname, port
    if isinstance(config, ch.EmailConfig):
        return config.host, config.port
    return None


def check_target(
    type_: str,
    config: ch.ChannelConfig,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
    *,
    file_root: Path | None = None,
) -> None:
    """Refuse (422 on ``config.url``/``config.host``) a target on a private address, and
    (422 on ``type``) a file channel where file channels are off (``file_root`` None)."""
    if isinstance(config, ch.FileConfig) and file_root is None:
        raise ValidationError(FILE_CHANNEL_OFF, field="type")
    target = _target(type_, config)
    if target is None:
        return
    field = "config.host" if type_ == "email" else "config.url"
    try:
        check_host(policy, *target, resolver)
    except DestinationNotAllowed as exc:
        raise ValidationError(str(exc), field=field) from None
    except FetchError:
        pass  # unresolvable now (or a token in apprise's host position): checked at send


def get_channel(session: Session, organization_id: str, channel_id: str) -> Channel:
    return get_owned(session, Channel, organization_id, channel_id, "channel")


def create_channel(
    session: Session,
    organization_id: str,
    *,
    name: str,
    type_: str,
    config: Mapping[str, Any],
    keyring: Keyring,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
    file_root: Path | None = None,
) -> Channel:
    """Validate, check the target, seal the secrets and store a new channel."""
    valid = ch.validate_config(type_, dict(config))
    check_target(type_, valid, policy, resolver, file_root=file_root)
    channel_id = new_id()
    channel = Channel(
        id=channel_id,
        organizationId=organization_id,
        name=name,
        type=type_,
        config=ch.seal_config(type_, valid, keyring, organization_id, channel_id),
    )
    session.add(channel)
    session.flush()
    return channel


def update_channel(
    session: Session,
    organization_id: str,
    channel_id: str,
    changes: Mapping[str, Any],
    *,
    keyring: Keyring,
    policy: GuardPolicy,
    resolver: Resolver | None = None,
    file_root: Path | None = None,
) -> Channel:
    """Apply ``name``, ``isActive`` and a whole new ``config``; a new config clears the
    channel's failure state (a fixed ``broken`` channel works again)."""
    channel = get_channel(session, organization_id, channel_id)
    if "name" in changes:
        channel.name = str(changes["name"])
    if "isActive" in changes:
        channel.isActive = bool(changes["isActive"])
    if "config" in changes:
        valid = ch.validate_config(channel.type, dict(changes["config"]))
        check_target(channel.type, valid, policy, resolver, file_root=file_root)
        channel.config = ch.seal_config(channel.type, valid, keyring, organization_id, channel.id)
        channel.status = "ok"
        channel.consecutiveFailures = 0
        channel.lastError = None
    session.flush()
    return channel


def delete_channel(session: Session, organization_id: str, channel_id: str) -> None:
    """Delete a channel; its links and deliveries go with it (cascade)."""
    session.delete(get_channel(session, organization_id, channel_id))
    session.flush()


def link_channel(session: Session, organization_id: str, news_id: str, channel_id: str) -> bool:
    """Make a search deliver to a channel; False if it already did.

    Both must belong to ``organization_id``: the composite foreign keys refuse anything
    else, and that refusal is reported as :class:`NotFound` (never a hint that the other
    organization's object exists).
    """
    exists = select(NewsChannel.id).where(
        NewsChannel.organizationId == organization_id,
        NewsChannel.newsId == news_id,
        NewsChannel.channelId == channel_id,
    )
    if session.scalar(exists) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                NewsChannel(organizationId=organization_id, newsId=news_id, channelId=channel_id)
            )
    except IntegrityError:
        if session.scalar(exists) is not None:
            return False  # a concurrent link won
        raise NotFound("no such news search or channel") from None
    return True


def unlink_channel(session: Session, organization_id: str, news_id: str, channel_id: str) -> None:
    done = session.execute(
        delete(NewsChannel).where(
            NewsChannel.organizationId == organization_id,
            NewsChannel.newsId == news_id,
            NewsChannel.channelId == channel_id,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("no such link between this news search and channel")
