"""Health alerts: what an organization was last told about each broken thing it depends on.

One row per (organization, subject kind, subject id): ``state`` is the health the last
check found, ``notifiedState`` what the organization's alert channels were last told.
A row whose two states differ is an alert still to send; sending it moves
``notifiedState`` up, so each transition is told once however many checks see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column, one_of
from core.db.models.tenancy import org_fk

#: What an alert is about: a source a search follows, a channel, a search's runs.
HEALTH_SUBJECT_KINDS = ("source", "channel", "news")
#: Health of a subject as alerts see it.
HEALTH_STATES = ("ok", "failing")


class HealthAlert(Timestamps, Base):
    """The alert state of one subject of one organization (see the module docstring).

    ``sendingState``/``sendingUntil``: a worker claimed the row to tell ``sendingState``
    and holds it until then (a dead worker's claim lapses and the row is pending again).
    """

    __tablename__ = "healthAlerts"
    __table_args__ = (
        UniqueConstraint("organizationId", "subjectKind", "subjectId"),
        one_of("subjectKind", HEALTH_SUBJECT_KINDS),
        one_of("state", HEALTH_STATES),
        Index(None, "state"),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    subjectKind: Mapped[str] = mapped_column(String(16))
    subjectId: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    #: The subject as the alert names it: ``name``, ``url``, ``error``, ``failures``.
    detail: Mapped[dict[str, Any] | None]
    changedAt: Mapped[datetime]
    notifiedState: Mapped[str | None] = mapped_column(String(16))
    sendingState: Mapped[str | None] = mapped_column(String(16))
    sendingUntil: Mapped[datetime | None]
    lastAlertAt: Mapped[datetime | None]
    #: Why the last attempt to tell this transition reached no channel.
    lastError: Mapped[str | None] = mapped_column(Text)
