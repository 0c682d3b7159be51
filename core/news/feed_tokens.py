"""The secret that opens a search's public feed, so any feed reader can follow it.

A feed reader cannot send an API key, so the feed URL carries its own capability:
``/news/{newsId}/feed.xml?token=...``. The token is ``FEED_TOKEN_PREFIX`` + 64 random
characters (the API key generator of :mod:`core.keys`); only its hash is stored, one per
search. Issuing again rotates it (the old URL stops working at once); revoking deletes it.
A token opens only its own search: the lookup takes the search id and the hash together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db.models import FeedToken, News
from core.keys import generate_key, hash_key, looks_like_key
from core.news.searches import get_search

#: Start of every feed token (tells it apart from API keys, ``nm_``).
FEED_TOKEN_PREFIX = "nmf_"  # noqa: S105  (a prefix, not a secret)


@dataclass(frozen=True)
class IssuedFeedToken:
    """A new feed token; ``token`` is the plaintext, returned once and never stored."""

    token: str = field(repr=False)
    row: FeedToken


def issue_feed_token(session: Session, organization_id: str, news_id: str) -> IssuedFeedToken:
    """Create the search's feed token, or rotate it (the previous one stops working)."""
    news = get_search(session, organization_id, news_id)
    generated = generate_key(FEED_TOKEN_PREFIX)
    row = session.scalar(
        select(FeedToken).where(
            FeedToken.organizationId == organization_id, FeedToken.newsId == news.id
        )
    )
    if row is None:
        row = FeedToken(organizationId=organization_id, newsId=news.id)
        session.add(row)
    row.tokenHash = generated.hash
    row.start = generated.start
    session.flush()
    return IssuedFeedToken(token=generated.key, row=row)


def feed_token_of(session: Session, organization_id: str, news_id: str) -> FeedToken | None:
    """The search's current feed token (metadata only), or None."""
    news = get_search(session, organization_id, news_id)
    return session.scalar(
        select(FeedToken).where(
            FeedToken.organizationId == organization_id, FeedToken.newsId == news.id
        )
    )


def revoke_feed_token(session: Session, organization_id: str, news_id: str) -> bool:
    """Delete the search's feed token; whether there was one."""
    news = get_search(session, organization_id, news_id)
    deleted = session.execute(
        delete(FeedToken).where(
            FeedToken.organizationId == organization_id, FeedToken.newsId == news.id
        )
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]


def search_for_feed_token(session: Session, news_id: str, token: str) -> News | None:
    """The search ``token`` opens, if it is ``news_id``'s current token; else None.

    Malformed tokens are refused without a query; the lookup goes by hash only.
    """
    if not looks_like_key(token, prefixes=(FEED_TOKEN_PREFIX,)):
        return None
    return session.scalar(
        select(News)
        .join(
            FeedToken,
            (FeedToken.organizationId == News.organizationId) & (FeedToken.newsId == News.id),
        )
        .where(FeedToken.tokenHash == hash_key(token), News.id == news_id)
    )
