"""A health alert in words: a pure function of the changes and ``now`` (no I/O).

The alert is a :class:`~core.delivery.model.DigestView` whose ``health`` lists the
changes and whose stories say them, so every channel type sends it with its own sender
and renderer (Slack blocks, email, webhook JSON of ``"type": "health"``, apprise, file).
Problems come first (shown urgent), recoveries after.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.delivery.model import DigestView, HealthChange, StoryView

#: The name alerts are sent under (where a digest names its search).
ALERT_SENDER = "newsmon health"

_WHAT = {"source": "Source", "channel": "Channel", "news": "Search"}


def _says(change: HealthChange) -> str:
    what = f"{_WHAT.get(change.subject, change.subject)} \u201c{change.name}\u201d"
    if change.state == "ok":
        return f"{what} is {change.error}" if change.error else f"{what} works again"
    if change.subject == "channel":
        return f"{what} is failing: alerts and digests do not reach it"
    if change.subject == "news":
        return f"{what}: its runs keep failing"
    return f"{what} keeps failing to fetch"


def _reason(change: HealthChange, failures: int | None) -> str:
    if change.state == "ok":
        return "recovered"
    if failures:
        unit = "fetches" if change.subject == "source" else "attempts"
        if change.subject == "news":
            unit = "runs"
        return f"{failures} failed {unit} in a row"
    return "failing"


def heading(changes: Sequence[HealthChange]) -> str:
    """The alert's title: the one change, or how many of each."""
    if len(changes) == 1:
        return f"newsmon: {_says(changes[0])}"
    failing = sum(1 for c in changes if c.state != "ok")
    recovered = len(changes) - failing
    parts = [f"{failing} failing"] if failing else []
    parts += [f"{recovered} recovered"] if recovered else []
    return "newsmon health: " + ", ".join(parts)


def alert_view(
    alert_id: str,
    organization_id: str,
    changes: Sequence[HealthChange],
    *,
    now: datetime,
    failures: dict[str, int] | None = None,
) -> DigestView:
    """The alert telling ``changes`` (``failures``: failures in a row by subject id)."""
    ordered = sorted(changes, key=lambda c: (c.state == "ok", c.subject, c.name, c.subject_id))
    stories = tuple(
        StoryView(
            id=f"{c.subject}:{c.subject_id}",
            title=_says(c),
            url=c.url,
            snippet=c.error,
            source=ALERT_SENDER,
            outlet=ALERT_SENDER,
            published_at=c.since,
            score=1.0 if c.state != "ok" else 0.0,
            reason=_reason(c, (failures or {}).get(c.subject_id)),
            urgent=c.state != "ok",
        )
        for c in ordered
    )
    return DigestView(
        id=alert_id,
        organization_id=organization_id,
        news_id="",
        search_name=ALERT_SENDER,
        key=f"health:{alert_id}",
        created_at=now,
        period_start=now,
        period_end=now,
        stories=stories,
        health=tuple(ordered),
        heading=heading(ordered),
    )
