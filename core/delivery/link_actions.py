"""What a verified one-click digest link does, in the caller's transaction.

Each token works once: its hash goes into ``digestLinkUses`` first (a conflict means it
was used, and nothing else happens), so a replayed link, or a mail scanner following
it twice, changes nothing. Feedback goes through :func:`core.news.story_feedback.label_story`,
the same row the API's feedback route writes, so it trains the same per-search model.
An unsubscribe removes the recipient from the email channel's ``to`` list, names it in
the config's ``unsubscribed`` list (which the organization reads on the channel), and
writes the audit log; the last recipient leaving deactivates the channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.bulk import insert_ignoring_conflicts
from core.db.models import Channel, DigestLinkUse, Story
from core.delivery.digest_links import LinkClaim
from core.ids import new_id
from core.news.story_feedback import label_story
from core.tenancy.audit import record_audit

#: Addresses kept in an email channel's ``unsubscribed`` list (the oldest drop out).
MAX_UNSUBSCRIBED_SHOWN = 200

Result = Literal["done", "used", "gone"]


@dataclass(frozen=True)
class LinkOutcome:
    """``done``: the link did its work now; ``used``: it had already (nothing changed);
    ``gone``: its story or channel no longer exists."""

    result: Result
    message: str


def _first_use(session: Session, claim: LinkClaim) -> bool:
    inserted = insert_ignoring_conflicts(
        session,
        DigestLinkUse,
        [
            {
                "id": new_id(),
                "tokenHash": claim.token_hash,
                "organizationId": claim.organization_id,
                "purpose": claim.purpose,
                "expiresAt": claim.expires_at,
            }
        ],
        ["tokenHash"],
    )
    return bool(inserted)


def _channel(session: Session, claim: LinkClaim) -> Channel | None:
    return session.scalar(
        select(Channel).where(
            Channel.organizationId == claim.organization_id, Channel.id == claim.channel_id
        )
    )


def use_feedback_link(
    session: Session,
    claim: LinkClaim,
    *,
    request_id: str | None = None,
    ip_address: str | None = None,
) -> LinkOutcome:
    """Record the claim's label on its story, once."""
    story = session.scalar(
        select(Story).where(
            Story.organizationId == claim.organization_id, Story.id == claim.story_id
        )
    )
    if story is None or _channel(session, claim) is None:
        return LinkOutcome("gone", "This story or channel no longer exists.")
    if not _first_use(session, claim):
        return LinkOutcome("used", "This link was already used; nothing changed.")
    label_story(session, claim.organization_id, story, claim.label, f"digest:{claim.channel_id}")
    record_audit(
        session,
        claim.organization_id,
        actor_type="system",
        actor_id=f"digest:{claim.channel_id}",
        action="story.feedback",
        target_type="story",
        target_id=story.id,
        request_id=request_id,
        ip_address=ip_address,
        details={"label": claim.label, "via": "digest link"},
    )
    shown = "relevant" if claim.label == "relevant" else "not relevant"
    return LinkOutcome("done", f"Thanks: \u201c{story.title}\u201d is marked {shown}.")


def _same_address(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def use_unsubscribe_link(
    session: Session,
    claim: LinkClaim,
    *,
    request_id: str | None = None,
    ip_address: str | None = None,
) -> LinkOutcome:
    """Remove the claim's recipient from its email channel, once."""
    channel = _channel(session, claim)
    if channel is None or channel.type != "email":
        return LinkOutcome("gone", "This alert no longer exists; you receive nothing from it.")
    if not _first_use(session, claim):
        return LinkOutcome("used", "You were already unsubscribed from this alert.")
    config: dict[str, Any] = dict(channel.config)
    recipients = [str(a) for a in config.get("to", [])]
    remaining = [a for a in recipients if not _same_address(a, claim.recipient)]
    if len(remaining) == len(recipients):
        return LinkOutcome("used", "You were already unsubscribed from this alert.")
    gone = [a for a in config.get("unsubscribed", []) if not _same_address(a, claim.recipient)]
    config["to"] = remaining
    config["unsubscribed"] = [*gone, claim.recipient][-MAX_UNSUBSCRIBED_SHOWN:]
    channel.config = config
    if not remaining:
        channel.isActive = False  # an email channel needs a recipient to send to
    record_audit(
        session,
        claim.organization_id,
        actor_type="system",
        actor_id=f"digest:{claim.channel_id}",
        action="channel.unsubscribe",
        target_type="channel",
        target_id=channel.id,
        request_id=request_id,
        ip_address=ip_address,
        details={"recipient": claim.recipient, "deactivated": not remaining},
    )
    session.flush()
    return LinkOutcome("done", "You are unsubscribed: this alert will no longer email you.")
