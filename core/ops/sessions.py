"""Browser sessions of the operator page, opened by logging in with an operator key.

The cookie holds a random token; the database keeps only its hash, in Better Auth's
``verifications`` table (identifier ``ops-session:<hash>``, value = operator key id),
so a stolen database does not yield a usable session and logging out deletes it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db.models import OperatorKey, Verification
from core.keys import hash_key

#: How long an operator stays logged in to the page.
OPS_SESSION_TTL = timedelta(hours=8)
#: Identifier prefix of operator-page sessions in ``verifications``.
IDENTIFIER_PREFIX = "ops-session:"
#: Random bytes of a session token.
TOKEN_BYTES = 32


def start_ops_session(session: Session, operator_key_id: str, *, now: datetime) -> str:
    """Store a new session of ``operator_key_id`` and return its token (cookie value)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        Verification(
            identifier=IDENTIFIER_PREFIX + hash_key(token),
            value=operator_key_id,
            expiresAt=now + OPS_SESSION_TTL,
        )
    )
    return token


def ops_session_operator(session: Session, token: str, *, now: datetime) -> OperatorKey | None:
    """The operator key behind a live session token; None if expired, unknown or revoked."""
    if not token or len(token) > 2 * TOKEN_BYTES:
        return None
    return session.scalar(
        select(OperatorKey)
        .join(Verification, Verification.value == OperatorKey.id)
        .where(
            Verification.identifier == IDENTIFIER_PREFIX + hash_key(token),
            Verification.expiresAt > now,
            OperatorKey.enabled,
        )
        .where((OperatorKey.expiresAt.is_(None)) | (OperatorKey.expiresAt > now))
    )


def end_ops_session(session: Session, token: str) -> None:
    session.execute(
        delete(Verification).where(Verification.identifier == IDENTIFIER_PREFIX + hash_key(token))
    )
