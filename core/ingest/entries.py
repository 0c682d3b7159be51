"""Storing parsed entries of a shared source, once per canonical URL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.db.bulk import insert_ignoring_conflicts
from core.db.models import Entry
from core.feeds import ParsedFeed
from core.feeds.dates import settle_date
from core.ids import new_id

#: Longest stored URL; longer entry links are dropped rather than truncated.
MAX_STORED_URL = 2048


def store_entries(session: Session, source_id: str, feed: ParsedFeed, now: datetime) -> int:
    """Insert the feed's entries not yet stored for this source; returns how many were new.

    Entries without an http(s) link cannot be deduplicated or linked to and are skipped.
    An entry seen before keeps its first version (``contentHash`` tells edits apart).
    A misread or future date is stored as ``now`` (the fetch time), with ``dateIssue``.
    """
    rows: dict[str, dict[str, Any]] = {}
    for entry in feed.entries:
        url = entry.canonical_url
        if not url or len(url) > MAX_STORED_URL or url in rows:
            continue
        published, date_issue = settle_date(entry.published, entry.date_issue, now)
        rows[url] = {
            "id": new_id(),
            "sourceId": source_id,
            "canonicalUrl": url,
            "url": (entry.url or url)[:MAX_STORED_URL],
            "guid": entry.guid,
            "title": entry.title or url,
            "summary": entry.summary or None,
            "author": entry.author,
            "language": entry.language,
            "publishedAt": published,
            "dateIssue": date_issue,
            "contentHash": entry.content_hash,
            "createdAt": now,
            "updatedAt": now,
        }
    return len(
        insert_ignoring_conflicts(session, Entry, list(rows.values()), ["sourceId", "canonicalUrl"])
    )
