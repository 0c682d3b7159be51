"""Freezing digests: plan a search's held stories, create the digest, its stories and one
delivery row per channel, all in the caller's transaction (the run's own, in ingest).

Called at the end of every run of the search (:func:`core.ingest.step.ingest`), so a
digest boundary is acted on at the first run after it. ``UNIQUE (newsId, digestKey)``,
``UNIQUE (digestId, storyId)`` and ``UNIQUE (channelId, digestId)`` make a repeated plan
a no-op; on PostgreSQL the search row is locked first so two concurrent runs of one
search plan one after the other and a story never lands in two digests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.db.bulk import insert_ignoring_conflicts
from core.db.models import Channel, Delivery, Digest, DigestStory, News, NewsChannel, Story
from core.delivery.planning import HeldStory, plan_digests
from core.delivery.wait_settings import WaitSettings, parse_wait_settings
from core.errors import ValidationError
from core.ids import new_id

log = logging.getLogger(__name__)

#: Held stories one planning looks at (oldest first); more wait for the next run.
MAX_HELD_STORIES = 1000
#: ``lastError`` of a delivery created for a channel already marked broken.
BROKEN_CHANNEL_ERROR = "channel is broken; fix it, then replay this delivery"


@dataclass(frozen=True)
class PlanOutcome:
    digests: int
    delivery_ids: tuple[str, ...]


def held_stories(session: Session, organization_id: str, news_id: str) -> list[HeldStory]:
    """Relevant stories of the search not yet delivered and in no digest.

    A copy of a story that is or will be delivered (``duplicateOfId``) is not held on its
    own: it reaches readers as "also reported by" under that story, so the same article
    does not arrive twice (see core.ingest.clusters for who leads a cluster).
    """
    in_digest = exists().where(DigestStory.storyId == Story.id)
    rows = session.execute(
        select(Story.id, Story.foundAt, Story.relevanceScore)
        .where(Story.organizationId == organization_id, Story.newsId == news_id)
        .where(~Story.isFiltered, ~Story.wasDelivered, ~in_digest)
        .where(Story.duplicateOfId.is_(None))
        .order_by(Story.foundAt, Story.id)
        .limit(MAX_HELD_STORIES)
    )
    return [HeldStory(id=i, found_at=found, score=score) for i, found, score in rows]


def delivery_channels(session: Session, organization_id: str, news_id: str) -> list[Channel]:
    """Active channels the search delivers to."""
    return list(
        session.scalars(
            select(Channel)
            .join(NewsChannel, NewsChannel.channelId == Channel.id)
            .where(NewsChannel.organizationId == organization_id, NewsChannel.newsId == news_id)
            .where(Channel.organizationId == organization_id, Channel.isActive)
            .order_by(Channel.id)
        )
    )


def _settings(news: News) -> WaitSettings:
    try:
        return parse_wait_settings(news.waitSettings)
    except ValidationError as exc:
        # Validated on write; an old row must not stop ingest. Immediate is the safe default.
        log.warning("search %s has invalid wait settings (%s); sending immediately", news.id, exc)
        return WaitSettings()


def plan_and_create(
    session: Session, organization_id: str, news_id: str, *, now: datetime
) -> PlanOutcome:
    """Create the digests due now and their deliveries; returns the new delivery ids
    (to enqueue after commit). Without an active channel, stories stay held."""
    lock = select(News).where(News.organizationId == organization_id, News.id == news_id)
    if session.get_bind().dialect.name == "postgresql":
        # FOR NO KEY UPDATE: plans of one search still wait for each other, but the
        # key-share locks of foreign key checks (the scheduler inserting this search's
        # next run while it holds the schedule this run records on) pass: a plain
        # FOR UPDATE made the two deadlock.
        lock = lock.with_for_update(key_share=True)
    news = session.scalars(lock).one()
    channels = delivery_channels(session, organization_id, news_id)
    if not channels:
        return PlanOutcome(digests=0, delivery_ids=())
    planned = plan_digests(now, _settings(news), held_stories(session, organization_id, news_id))
    digests = 0
    delivery_ids: list[str] = []
    for plan in planned:
        created = insert_ignoring_conflicts(
            session,
            Digest,
            [
                {
                    "id": new_id(),
                    "organizationId": organization_id,
                    "newsId": news_id,
                    "digestKey": plan.key,
                    "storyCount": len(plan.story_ids),
                    "periodStart": plan.period_start,
                    "periodEnd": plan.period_end,
                    "createdAt": now,
                    "updatedAt": now,
                }
            ],
            ["newsId", "digestKey"],
        )
        if not created:
            continue  # this period's digest exists: its stories wait for the next one
        digest_id = created[0]
        digests += 1
        insert_ignoring_conflicts(
            session,
            DigestStory,
            [
                {
                    "id": new_id(),
                    "digestId": digest_id,
                    "storyId": story_id,
                    "position": position,
                    "createdAt": now,
                    "updatedAt": now,
                }
                for position, story_id in enumerate(plan.story_ids)
            ],
            ["digestId", "storyId"],
        )
        rows = []
        for channel in channels:
            broken = channel.status == "broken"
            rows.append(
                {
                    "id": new_id(),
                    "organizationId": organization_id,
                    "channelId": channel.id,
                    "digestId": digest_id,
                    "state": "failed" if broken else "pending",
                    "attempts": 0,
                    "nextAttemptAt": None if broken else now,
                    "lastError": BROKEN_CHANNEL_ERROR if broken else None,
                    "createdAt": now,
                    "updatedAt": now,
                }
            )
        inserted = insert_ignoring_conflicts(session, Delivery, rows, ["channelId", "digestId"])
        pending = {row["id"] for row in rows if row["state"] == "pending"}
        delivery_ids.extend(i for i in inserted if i in pending)
    return PlanOutcome(digests=digests, delivery_ids=tuple(delivery_ids))
