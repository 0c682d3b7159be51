"""Runs: one row per schedule fire (or manual trigger), claimed by the worker that runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps, id_column, one_of
from core.db.models.news import news_fk
from core.db.models.tenancy import org_fk

#: queued -> running -> succeeded | failed (running returns to queued on a retry).
RUN_STATES = ("queued", "running", "succeeded", "failed")
#: Why a run exists.
RUN_TRIGGERS = ("schedule", "manual", "catchup")

_QUEUED_MANUAL = text("state = 'queued' AND \"trigger\" = 'manual'")


class Run(Timestamps, Base):
    """One execution of a search. Unique per (schedule, scheduledFor): fires never double."""

    __tablename__ = "runs"
    __table_args__ = (
        news_fk(),
        UniqueConstraint("scheduleId", "scheduledFor"),
        one_of("state", RUN_STATES),
        one_of("trigger", RUN_TRIGGERS),
        Index(None, "state", "enqueuedAt"),
        Index(None, "newsId", "scheduledFor"),
        Index(None, "finishedAt"),  # retention
        # "Run now" twice while a manual run still waits gives the same run back.
        Index(
            "uq_runs_newsId_queued_manual",
            "newsId",
            unique=True,
            sqlite_where=_QUEUED_MANUAL,
            postgresql_where=_QUEUED_MANUAL,
        ),
    )

    id: Mapped[str] = id_column()
    organizationId: Mapped[str] = org_fk()
    newsId: Mapped[str] = mapped_column(index=True)
    scheduleId: Mapped[str | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")
    scheduledFor: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    leaseUntil: Mapped[datetime | None]
    enqueuedAt: Mapped[datetime | None]
    startedAt: Mapped[datetime | None]
    finishedAt: Mapped[datetime | None]
    error: Mapped[dict[str, Any] | None]
    stats: Mapped[dict[str, Any] | None]
