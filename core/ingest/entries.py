"""Storing parsed entries of a shared source, once per URL key."""

from __future__ import annotations

from collections import defaultdict
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
    An entry seen before (by URL key) keeps its first version (``contentHash`` tells
    edits apart). A misread or future date is stored as ``now`` (the fetch time), with
    ``dateIssue``.
    """
    rows: dict[str, dict[str, Any]] = {}
    trusted = _item_ids(feed)
    for entry in feed.entries:
        key, url = entry.url_key, entry.canonical_url
        if not key or not url or max(len(key), len(url)) > MAX_STORED_URL or key in rows:
            continue
        published, date_issue = settle_date(entry.published, entry.date_issue, now)
        rows[key] = {
            "id": new_id(),
            "sourceId": source_id,
            "urlKey": key,
            "canonicalUrl": url,
            "url": (entry.url or url)[:MAX_STORED_URL],
            "guid": entry.guid,
            "guidKey": entry.guid_key if entry.guid_key in trusted else None,
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
        insert_ignoring_conflicts(session, Entry, list(rows.values()), ["sourceId", "urlKey"])
    )


def _item_ids(feed: ParsedFeed) -> set[str]:
    """The feed's global ids that each name one item: an id that several items of the
    document share (a feed that gives every item one id) names none of them."""
    links: dict[str, set[str | None]] = defaultdict(set)
    for entry in feed.entries:
        if entry.guid_key and len(entry.guid_key) <= MAX_STORED_URL:
            links[entry.guid_key].add(entry.url_key)
    return {guid for guid, keys in links.items() if len(keys) == 1}
