"""Where an organization's health alerts go: ``organizations.alertChannels``.

``None`` (the default) sends to every active channel of the organization that works
(status ``ok``); a list names the channels, each of which must be the organization's
own. Either way a channel that is failing or broken, or is itself what an alert is
about, is left out: an alert goes through the organization's *other* working channels.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Channel, Organization
from core.errors import NotFound, ValidationError

#: Most channels an organization may name for its alerts.
MAX_ALERT_CHANNELS = 50


def alert_channel_setting(session: Session, organization_id: str) -> list[str] | None:
    """The organization's configured alert channels (``None``: the default)."""
    organization = session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    return organization.alertChannels


def set_alert_channels(
    session: Session, organization_id: str, channel_ids: list[str] | None
) -> list[str] | None:
    """Store the organization's alert channels (``None``: back to the default). Every id
    must name one of its own channels (422 naming the first that does not)."""
    if channel_ids is not None:
        if len(channel_ids) > MAX_ALERT_CHANNELS:
            raise ValidationError(
                f"at most {MAX_ALERT_CHANNELS} alert channels", field="channelIds"
            )
        channel_ids = list(dict.fromkeys(channel_ids))  # keep order, drop repeats
        own = set(
            session.scalars(
                select(Channel.id).where(
                    Channel.organizationId == organization_id, Channel.id.in_(channel_ids)
                )
            )
        )
        for index, channel_id in enumerate(channel_ids):
            if channel_id not in own:
                raise ValidationError(
                    f"no channel {channel_id} in this organization", field=f"channelIds.{index}"
                )
    session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(alertChannels=channel_ids)
    )
    return channel_ids


def alert_targets(
    session: Session,
    organization_id: str,
    configured: list[str] | None,
    *,
    exclude: Collection[str] = (),
) -> list[Channel]:
    """The channels an alert goes to now: configured (or all), active, working, and not
    one the alert is about."""
    query = select(Channel).where(
        Channel.organizationId == organization_id,
        Channel.isActive.is_(True),
        Channel.status == "ok",
    )
    if configured is not None:
        query = query.where(Channel.id.in_(configured))
    return [c for c in session.scalars(query.order_by(Channel.id)) if c.id not in exclude]
