"""The health alert actor: tell one organization what changed in its sources, channels
and searches (claim, send, record: :func:`core.health.notify.notify`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq
from sqlalchemy import Engine

from core.db.outage import OUTAGE_ERRORS
from core.delivery.deliveries import SendContext
from core.health.detect import HealthPolicy
from core.health.notify import notify
from workers.broker import DELIVER_QUEUE, enqueue_many

log = logging.getLogger(__name__)

#: Actor name of health alerts (the message's ``actor_name``).
HEALTH_ALERT_ACTOR = "send_health_alerts"
#: Milliseconds one alert may take: a send of 60 s at most per channel, a few channels.
HEALTH_ALERT_TIME_LIMIT_MS = 150_000


def declare_health_alert_actor(
    broker: dramatiq.Broker,
    engine: Engine,
    context: Callable[[], SendContext],
    *,
    policy: HealthPolicy,
) -> dramatiq.Actor[[str], None]:
    """Declare ``send_health_alerts`` on ``broker``; ``context`` builds the send context
    once (the deliver actor's)."""
    made: list[SendContext] = []

    def send_health_alerts(organization_id: str) -> None:
        if not made:
            made.append(context())
        result = notify(engine, organization_id, made[0], policy=policy)
        if result.skipped:
            log.info("health alerts of %s: %s", organization_id, result.skipped)
            return
        for channel_id, outcome in result.outcomes.items():
            log.info(
                "health alert of %s to channel %s: %s %s",
                organization_id,
                channel_id,
                outcome.kind,
                outcome.error or "",
            )

    decorate = dramatiq.actor(
        actor_name=HEALTH_ALERT_ACTOR,
        queue_name=DELIVER_QUEUE,
        broker=broker,
        time_limit=HEALTH_ALERT_TIME_LIMIT_MS,
        # An alert that could not be sent is offered again by the next health check;
        # only an unreachable database is retried here, never dead-lettered.
        retry_when=lambda retries, exc: isinstance(exc, OUTAGE_ERRORS),
    )
    return decorate(send_health_alerts)


def health_alert_message(organization_id: str) -> dramatiq.Message[None]:
    """The message of one organization's alerts, built without the actor (the scheduler
    sends it)."""
    return dramatiq.Message(
        queue_name=DELIVER_QUEUE,
        actor_name=HEALTH_ALERT_ACTOR,
        args=(organization_id,),
        kwargs={},
        options={},
    )


def enqueue_health_alerts(broker: dramatiq.Broker, organization_ids: list[str]) -> None:
    """One message per organization (duplicates are harmless: the claim decides)."""
    enqueue_many(broker, [health_alert_message(org_id) for org_id in organization_ids])
