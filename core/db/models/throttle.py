"""Throttle windows: the fixed-window counters of :mod:`core.throttle`, one row per bucket."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps


class ThrottleWindow(Timestamps, Base):
    """``hits`` counted in the window starting at ``windowStart`` for one ``bucket`` (e.g.
    ``run-now:<organizationId>``); ``organizationId``, when set, deletes it with its
    organization."""

    __tablename__ = "throttleWindows"
    __table_args__ = (CheckConstraint('"hits" >= 0', name="hits_not_negative"),)

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    organizationId: Mapped[str | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    windowStart: Mapped[datetime]
    hits: Mapped[int] = mapped_column(default=0)
