"""The webhook payload of a digest: JSON with a ``version`` field.

Schema (version 1); times are ISO 8601 UTC or null::

    {
      "version": 1,
      "type": "digest",
      "digest": {
        "id": str, "key": str, "createdAt": str,
        "periodStart": str|null, "periodEnd": str|null,
        "search": {"id": str, "name": str},
        "stories": [
          {"id": str, "title": str, "url": str, "snippet": str, "source": str,
           "outlet": str, "publishedAt": str|null, "score": float, "reason": str,
           "alsoReportedBy": [{"source": str, "url": str, "outlet": str}]}
        ]
      }
    }

A health alert (:mod:`core.health`) has ``"type": "health"`` and, instead of
``digest``::

    "alert": {"id": str, "createdAt": str, "title": str,
              "changes": [{"subject": "source"|"channel"|"news", "id": str, "name": str,
                           "state": "failing"|"ok", "error": str, "since": str,
                           "url": str}]}

The body is the same on every attempt (the ``webhook-id`` header names the delivery);
fields are only ever added within a version. ``source`` is the story's host, ``outlet``
the name readers know it by (its feed's title; the host when there is none).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.delivery.model import DigestView

#: Version of the payload schema above.
PAYLOAD_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def health_payload(digest: DigestView) -> dict[str, Any]:
    """The payload of a health alert."""
    return {
        "version": PAYLOAD_VERSION,
        "type": "health",
        "alert": {
            "id": digest.id,
            "createdAt": _iso(digest.created_at),
            "title": digest.title,
            "changes": [
                {
                    "subject": c.subject,
                    "id": c.subject_id,
                    "name": c.name,
                    "state": c.state,
                    "error": c.error,
                    "since": _iso(c.since),
                    "url": c.url,
                }
                for c in digest.health
            ],
        },
    }


def digest_payload(digest: DigestView) -> dict[str, Any]:
    """The payload as a dict (JSON serialization escapes everything)."""
    if digest.health:
        return health_payload(digest)
    return {
        "version": PAYLOAD_VERSION,
        "type": "digest",
        "digest": {
            "id": digest.id,
            "key": digest.key,
            "createdAt": _iso(digest.created_at),
            "periodStart": _iso(digest.period_start),
            "periodEnd": _iso(digest.period_end),
            "search": {"id": digest.news_id, "name": digest.search_name},
            "stories": [
                {
                    "id": s.id,
                    "title": s.title,
                    "url": s.url,
                    "snippet": s.snippet,
                    "source": s.source,
                    "outlet": s.outlet or s.source,
                    "publishedAt": _iso(s.published_at),
                    "score": round(s.score, 4),
                    "reason": s.reason,
                    "alsoReportedBy": [
                        {"source": a.source, "url": a.url, "outlet": a.name}
                        for a in s.also_reported
                    ],
                }
                for s in digest.stories
            ],
        },
    }


def render_json(digest: DigestView) -> bytes:
    """The UTF-8 JSON body (compact, ``<``/``>``/``&`` escaped for HTML-embedding readers)."""
    text = json.dumps(digest_payload(digest), ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode("utf-8")
