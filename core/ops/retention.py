"""Retention: what newsmon deletes once it is old, in small batches that never hold long locks.

Each :class:`PruneRule` names one kind of row and the condition that makes it prunable at
``now``; :func:`prune` deletes by primary key, at most ``batch_size`` rows per committed
transaction, so no statement locks more than one batch and concurrent work carries on.
:func:`prunable` counts the same rows without deleting (``newsmon db prune --dry-run``).

What is kept, and why:

- ``stories`` are an organization's own record and are kept longest; a story that carries
  relevance feedback is never pruned (its label is the search's training data), and a
  story is the search's memory of a URL, so one within its retention is never delivered
  again even if its feed still carries it.
- ``entries`` are shared public data: a story keeps its own copy of title, URL and snippet,
  so an old entry goes first. An entry pruned while its feed still carries it is stored
  again on the next fetch; the search's stories still know its URL, so it is no news.
- ``sources`` no search follows any more go once they have not been fetched for the
  entries' retention (their entries with them).
- finished ``runs``; ``digests`` with their deliveries once none of them is still pending
  or sending, the deliveries' ``deliveryAttempts`` first (up to a budget of rows each,
  more after replays: too many for a cascade inside one digest batch); the
  ``auditLogs``; expired ``verifications`` (operator-page sessions) and ``invitations``;
  ``relevanceModels`` beyond the newest :data:`MODEL_VERSIONS_KEPT`;
  ``digestLinkUses`` of links past their expiry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from core.config import Settings
from core.db.base import UTCDateTime
from core.db.models import (
    AuditLog,
    Delivery,
    DeliveryAttempt,
    Digest,
    DigestLinkUse,
    Entry,
    Invitation,
    NewsSource,
    RelevanceModel,
    Run,
    Source,
    Story,
    StoryFeedback,
    Verification,
)
from core.db.session import unit_of_work

#: Rows deleted per transaction: small enough that a batch holds its locks for milliseconds.
PRUNE_BATCH_SIZE = 1000
#: Versions of a search's relevance model kept (the newest; older ones are history only).
MODEL_VERSIONS_KEPT = 3
#: How long an expired invitation or verification is kept (so "expired" can be told).
EXPIRED_GRACE = timedelta(days=30)
#: Seconds one scheduler pass of :func:`prune` may take before yielding to the tick loop.
PRUNE_BUDGET_S = 2.0
#: PostgreSQL advisory lock key held by the one scheduler replica pruning at a time.
PRUNE_LOCK_KEY = 0x6E6D_7072  # "nmpr"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept; ``None`` keeps it forever.

    Parameters:
      stories: an organization's stories, by when they were found.
      entries: shared feed entries (and unfollowed sources), by when they were stored.
      runs: finished runs, by when they finished.
      deliveries: digests and their deliveries, by when the digest was made.
      audit: audit log entries.
    """

    stories: timedelta | None = timedelta(days=365)
    entries: timedelta | None = timedelta(days=30)
    runs: timedelta | None = timedelta(days=30)
    deliveries: timedelta | None = timedelta(days=90)
    audit: timedelta | None = timedelta(days=365)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        def days(value: int) -> timedelta | None:
            return timedelta(days=value) if value > 0 else None

        return cls(
            stories=days(settings.retain_stories_days),
            entries=days(settings.retain_entries_days),
            runs=days(settings.retain_runs_days),
            deliveries=days(settings.retain_deliveries_days),
            audit=days(settings.retain_audit_days),
        )


Condition = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True)
class PruneRule:
    """One kind of prunable row: ``model``'s rows matching ``where(now)``."""

    name: str
    model: Any
    where: Condition
    order_by: Any = None


def _at(moment: datetime) -> ColumnElement[datetime]:
    return literal(moment, UTCDateTime())


def _older(column: Any, age: timedelta) -> Condition:
    return lambda now: column < _at(now - age)


def _stories(age: timedelta) -> Condition:
    labelled = exists().where(StoryFeedback.storyId == Story.id)
    return lambda now: and_(Story.foundAt < _at(now - age), ~labelled)


def _runs(age: timedelta) -> Condition:
    return lambda now: and_(Run.state.in_(("succeeded", "failed")), Run.finishedAt < _at(now - age))


def _digests(age: timedelta) -> Condition:
    busy = exists().where(
        Delivery.digestId == Digest.id, Delivery.state.in_(("pending", "sending"))
    )
    return lambda now: and_(Digest.createdAt < _at(now - age), ~busy)


def _attempts_of_digests(age: timedelta) -> Condition:
    digest_prunable = _digests(age)
    # Its own alias: the digest condition's EXISTS over deliveries must not correlate
    # with this one.
    of_attempt = aliased(Delivery)

    def where(now: datetime) -> ColumnElement[bool]:
        digests = select(Digest.id).where(digest_prunable(now))
        deliveries = select(of_attempt.id).where(of_attempt.digestId.in_(digests))
        return DeliveryAttempt.deliveryId.in_(deliveries)

    return where


def _unfollowed_sources(age: timedelta) -> Condition:
    followed = exists().where(NewsSource.sourceId == Source.id)
    last_used = func.coalesce(Source.lastFetchedAt, Source.createdAt)
    return lambda now: and_(~followed, last_used < _at(now - age))


def _old_model_versions(_now: datetime) -> ColumnElement[bool]:
    ranked = select(
        RelevanceModel.id,
        func.row_number()
        .over(partition_by=RelevanceModel.newsId, order_by=RelevanceModel.version.desc())
        .label("rank"),
    ).subquery()
    stale = select(ranked.c.id).where(ranked.c.rank > MODEL_VERSIONS_KEPT)
    return RelevanceModel.id.in_(stale)


def prune_rules(policy: RetentionPolicy) -> list[PruneRule]:
    """The rules of ``policy``, children before parents (no cascade does a big delete)."""
    rules: list[PruneRule] = []
    if policy.deliveries is not None:
        # A digest's deliveries and digestStories go with it (ON DELETE CASCADE) but are
        # a handful of rows per digest, so batches stay small.
        rules.append(
            PruneRule("deliveryAttempts", DeliveryAttempt, _attempts_of_digests(policy.deliveries))
        )
        rules.append(PruneRule("digests", Digest, _digests(policy.deliveries)))
    if policy.stories is not None:
        rules.append(PruneRule("stories", Story, _stories(policy.stories)))
    if policy.entries is not None:
        rules.append(PruneRule("entries", Entry, _older(Entry.createdAt, policy.entries)))
        rules.append(PruneRule("sources", Source, _unfollowed_sources(policy.entries)))
    if policy.runs is not None:
        rules.append(PruneRule("runs", Run, _runs(policy.runs)))
    if policy.audit is not None:
        rules.append(PruneRule("auditLogs", AuditLog, _older(AuditLog.createdAt, policy.audit)))
    rules.append(
        PruneRule("verifications", Verification, _older(Verification.expiresAt, EXPIRED_GRACE))
    )
    rules.append(PruneRule("invitations", Invitation, _older(Invitation.expiresAt, EXPIRED_GRACE)))
    # A used digest link past its expiry is refused as expired: its record is not needed.
    rules.append(
        PruneRule("digestLinkUses", DigestLinkUse, _older(DigestLinkUse.expiresAt, timedelta(0)))
    )
    rules.append(PruneRule("relevanceModels", RelevanceModel, _old_model_versions))
    return rules


def prunable(session: Session, policy: RetentionPolicy, *, now: datetime) -> dict[str, int]:
    """How many rows each rule would delete now (nothing is deleted)."""
    counts: dict[str, int] = {}
    for rule in prune_rules(policy):
        query = select(func.count()).select_from(rule.model).where(rule.where(now))
        counts[rule.name] = session.scalar(query) or 0
    return counts


def _delete_batch(session: Session, rule: PruneRule, now: datetime, batch_size: int) -> int:
    ids = select(rule.model.id).where(rule.where(now)).limit(batch_size)
    result = session.execute(
        delete(rule.model)
        .where(rule.model.id.in_(ids.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class PruneReport:
    """Rows deleted per rule, and whether every rule ran out of prunable rows."""

    deleted: dict[str, int] = field(default_factory=dict)
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def prune(
    engine: Engine,
    policy: RetentionPolicy,
    *,
    now: datetime,
    batch_size: int = PRUNE_BATCH_SIZE,
    budget_s: float | None = None,
    rules: Iterable[PruneRule] | None = None,
) -> PruneReport:
    """Delete what ``policy`` lets go, one committed batch at a time.

    With ``budget_s``, stops after the batch that exceeds it and reports ``complete=False``
    (the scheduler calls again on its next tick); without, runs until nothing is left.
    """
    started = time.monotonic()
    report = PruneReport()
    for rule in rules if rules is not None else prune_rules(policy):
        report.deleted.setdefault(rule.name, 0)
        while True:
            with unit_of_work(engine) as session:
                deleted = _delete_batch(session, rule, now, batch_size)
            report.deleted[rule.name] += deleted
            if deleted < batch_size:
                break
            if budget_s is not None and time.monotonic() - started > budget_s:
                report.complete = False
                return report
    return report


@contextlib.contextmanager
def exclusive_pruner(engine: Engine) -> Iterator[bool]:
    """Whether this process may prune now: on PostgreSQL one replica at a time holds an
    advisory lock for the pass (the others skip it); SQLite has one scheduler."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        held = bool(conn.scalar(select(func.pg_try_advisory_lock(PRUNE_LOCK_KEY))))
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.scalar(select(func.pg_advisory_unlock(PRUNE_LOCK_KEY)))
                conn.commit()
