"""Telling an organization what changed: claim its pending alerts, send, record.

The worker's whole body (:func:`notify`), in three steps so no transaction is open
while a channel is contacted:

1. **Claim** (one short transaction): the organization's rows whose ``state`` it was
   not told yet and that no worker holds, the channels to tell (see
   :mod:`core.health.alert_channels`) and one hit on its hourly alert budget
   (:mod:`core.throttle`, bucket ``health-alerts:<organizationId>``). Each row is held
   for ``ALERT_LEASE`` with the state being told. No working channel, or no budget
   left: nothing is claimed, the reason lands on the rows (``lastError``) and they wait
   for a later check.
2. **Send** one message telling every claimed change to each channel, through
   :func:`core.delivery.deliveries.send_or_fail` (the channel's own sender, its
   deadline, the outbound guard, secrets redacted). Sends are not recorded as
   deliveries and do not count on the channel's health.
3. **Record** (one short transaction, fenced by the claim): a message that reached at
   least one channel moves ``notifiedState`` to the state it told; otherwise the rows are
   released with the errors and the next check offers them again.

A duplicate message finds nothing to claim; a worker that dies after its claim leaves
rows that are offered again once ``ALERT_LEASE`` has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, select, update
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.db.models import Channel, HealthAlert, Organization
from core.db.session import unit_of_work
from core.delivery.deliveries import SendContext, send_or_fail
from core.delivery.model import HealthChange
from core.delivery.outcome import Outcome
from core.health.alert_channels import alert_targets
from core.health.detect import HealthPolicy, pending_filter
from core.health.message import alert_view
from core.ids import new_id
from core.throttle import hit

log = logging.getLogger(__name__)

#: How long a claim holds an organization's alert rows (well past a send's 60 s).
ALERT_LEASE = timedelta(minutes=3)
#: Length of the window ``alerts_per_hour`` counts in.
ALERT_WINDOW_S = 3600
#: Changes told in one message (the rest in the next).
MAX_CHANGES_PER_ALERT = 100
#: Longest error text kept on an alert row.
MAX_ALERT_ERROR_CHARS = 1000


def throttle_bucket(organization_id: str) -> str:
    return f"health-alerts:{organization_id}"


@dataclass(frozen=True)
class AlertClaim:
    """The rows one worker tells (id -> the state it tells) and where to."""

    organization_id: str
    until: datetime
    rows: dict[str, str]
    changes: tuple[HealthChange, ...]
    failures: dict[str, int]
    channels: tuple[Channel, ...]


@dataclass(frozen=True)
class NotifyResult:
    """What one notify call did: the outcome per channel, or why nothing was sent."""

    outcomes: dict[str, Outcome]
    skipped: str | None = None

    @property
    def sent(self) -> bool:
        return any(o.kind == "sent" for o in self.outcomes.values())


def _note(session: Session, organization_id: str, row_ids: list[str], error: str) -> None:
    session.execute(
        update(HealthAlert)
        .where(HealthAlert.organizationId == organization_id, HealthAlert.id.in_(row_ids))
        .values(lastError=error[:MAX_ALERT_ERROR_CHARS]),
        execution_options={"synchronize_session": False},
    )


def claim_alerts(
    session: Session,
    organization_id: str,
    *,
    policy: HealthPolicy,
    now: datetime,
    lease: timedelta = ALERT_LEASE,
) -> AlertClaim | str | None:
    """Claim the organization's pending alerts; ``None``: nothing pending, a string:
    why nothing can be sent now (no working channel, the hourly budget spent)."""
    organization = session.get(Organization, organization_id)
    if organization is None or not organization.isActive:
        return None
    query = (
        select(HealthAlert)
        .where(HealthAlert.organizationId == organization_id, pending_filter(now))
        .order_by(HealthAlert.changedAt, HealthAlert.id)
        .limit(MAX_CHANGES_PER_ALERT)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    if not rows:
        return None
    ids = [row.id for row in rows]
    about = {row.subjectId for row in rows if row.subjectKind == "channel"}
    channels = alert_targets(session, organization_id, organization.alertChannels, exclude=about)
    if not channels:
        _note(session, organization_id, ids, "no working alert channel")
        return "no working alert channel"
    admission = hit(
        session.connection(),
        throttle_bucket(organization_id),
        limit=policy.alerts_per_hour,
        window_s=ALERT_WINDOW_S,
        now=now,
        organization_id=organization_id,
    )
    if not admission.allowed:
        reason = (
            f"alert limit reached ({policy.alerts_per_hour} an hour); "
            f"the next may go in {admission.retry_after_s} s"
        )
        _note(session, organization_id, ids, reason)
        return reason
    until = now + lease
    for row in rows:
        row.sendingState = row.state
        row.sendingUntil = until
        row.updatedAt = now
    session.flush()
    for channel in channels:
        session.expunge(channel)
    detail = {row.id: row.detail or {} for row in rows}
    return AlertClaim(
        organization_id=organization_id,
        until=until,
        rows={row.id: row.state for row in rows},
        changes=tuple(
            HealthChange(
                subject=row.subjectKind,
                subject_id=row.subjectId,
                name=str(detail[row.id].get("name") or row.subjectId),
                state=row.state,
                # a recovery's "error": why it is no longer watched, if it left
                error=str(detail[row.id].get("gone" if row.state == "ok" else "error") or ""),
                since=row.changedAt,
                url=str(detail[row.id].get("url") or ""),
            )
            for row in rows
        ),
        failures={
            row.subjectId: int(detail[row.id].get("failures") or 0)
            for row in rows
            if row.state != "ok"
        },
        channels=tuple(channels),
    )


def send_alert(claim: AlertClaim, ctx: SendContext, *, now: datetime) -> dict[str, Outcome]:
    """Send the claimed changes to each channel once (no transaction open)."""
    alert_id = new_id()
    view = alert_view(
        alert_id, claim.organization_id, claim.changes, now=now, failures=claim.failures
    )
    # Alerts carry no feedback or unsubscribe links: there is no story to label.
    plain = replace(ctx, links=None, slack_buttons=False)
    return {
        channel.id: send_or_fail(
            channel, view, delivery_id=f"health_{alert_id}", ctx=plain, now=now
        )
        for channel in claim.channels
    }


def record_alert(
    session: Session, claim: AlertClaim, outcomes: dict[str, Outcome], *, now: datetime
) -> None:
    """Record what the send achieved, only where the claim still holds."""
    held = and_(
        HealthAlert.organizationId == claim.organization_id,
        HealthAlert.sendingUntil == claim.until,
    )
    if any(o.kind == "sent" for o in outcomes.values()):
        for row_id, told in claim.rows.items():
            session.execute(
                update(HealthAlert)
                .where(held, HealthAlert.id == row_id)
                .values(
                    notifiedState=told,
                    sendingState=None,
                    sendingUntil=None,
                    lastAlertAt=now,
                    lastError=None,
                    updatedAt=now,
                ),
                execution_options={"synchronize_session": False},
            )
        return
    errors = "; ".join(f"{cid}: {o.error or o.kind}" for cid, o in outcomes.items())
    session.execute(
        update(HealthAlert)
        .where(held, HealthAlert.id.in_(list(claim.rows)))
        .values(
            sendingState=None,
            sendingUntil=None,
            lastError=f"no channel took the alert ({errors})"[:MAX_ALERT_ERROR_CHARS],
            updatedAt=now,
        ),
        execution_options={"synchronize_session": False},
    )


def notify(
    engine: Engine,
    organization_id: str,
    ctx: SendContext,
    *,
    policy: HealthPolicy,
    clock: Callable[[], datetime] = utcnow,
) -> NotifyResult:
    """Claim, send and record one organization's pending alerts (the actor's body)."""
    with unit_of_work(engine) as session:
        claim = claim_alerts(session, organization_id, policy=policy, now=clock())
    if claim is None or isinstance(claim, str):
        return NotifyResult({}, skipped=claim or "nothing to tell")
    outcomes = send_alert(claim, ctx, now=clock())
    with unit_of_work(engine) as session:
        record_alert(session, claim, outcomes, now=clock())
    return NotifyResult(outcomes)
