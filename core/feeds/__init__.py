"""Feed parsing and URL canonicalization: pure functions, no I/O.

``parse_feed(body, headers, base_url) -> ParsedFeed`` turns fetched bytes into plain-text
entries with canonical URLs; ``canonicalize(url)`` is the dedupe key on its own.
"""

from core.feeds.canonical_url import canonicalize
from core.feeds.model import (
    MAX_ENTRIES_PER_FEED,
    FeedKind,
    FeedParseError,
    ParsedEntry,
    ParsedFeed,
)
from core.feeds.parse import parse_feed
from core.feeds.text import MAX_SNIPPET_CHARS, html_to_text

__all__ = [
    "MAX_ENTRIES_PER_FEED",
    "MAX_SNIPPET_CHARS",
    "FeedKind",
    "FeedParseError",
    "ParsedEntry",
    "ParsedFeed",
    "canonicalize",
    "html_to_text",
    "parse_feed",
]
