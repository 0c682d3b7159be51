"""Request dependencies: the database connection and session, the caller's key, permissions.

Keys come as ``x-api-key: <key>`` or ``Authorization: Bearer <key>``. A key that cannot be
one of ours (length, prefix, alphabet) is refused with 401 before any query. A plausible
key costs one statement (:func:`core.tenancy.key_checks.use_api_key`), run in autocommit on
the request's own connection before the request's transaction starts: validity, quota and
rate limit in one round trip, and the quota spent even when the route later fails. Unknown,
disabled, expired and malformed keys all get the same 401; lookups go by hash only.

Better Auth *sessions* are not accepted (yet): Better Auth keeps session tokens in
plaintext and signs the cookie with its own secret, so verifying them here would mean
sharing that secret and looking tokens up by plaintext (a timing side channel), and the
mapping from member roles to key-style permissions is not decided. API keys cover the
programmatic clients this API serves; a front end uses Better Auth's own routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import dramatiq
from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from api.errors import ApiError
from core.config import Settings
from core.db.session import transaction
from core.fetch import GuardPolicy, Resolver
from core.keys import Permissions, hash_key, looks_like_key, require_permission, split_permission
from core.tenancy.api_keys import API_KEY_PREFIX, OPERATOR_KEY_PREFIX
from core.tenancy.audit import record_audit
from core.tenancy.key_checks import (
    KeyRefusal,
    KeyUse,
    explain_refusal,
    use_api_key,
    use_operator_key,
)
from core.throttle import hit

T = TypeVar("T")

#: The one message of every refused key, whatever the reason (no oracle).
INVALID_KEY_MESSAGE = "invalid API key"
#: Message when no key was sent at all.
MISSING_KEY_MESSAGE = "missing API key: send x-api-key or Authorization: Bearer"
#: Seconds of the window of the per-organization throttles (their settings are per minute).
ORG_THROTTLE_WINDOW_S = 60

_api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


def get_connection(request: Request) -> Iterator[Connection]:
    """One pooled connection per request, shared by the key check and the session."""
    with request.app.state.engine.connect() as conn:
        yield conn


ConnectionDep = Annotated[Connection, Depends(get_connection, scope="function")]


def get_session(conn: ConnectionDep) -> Iterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back if it
    raises; both before the response is sent."""
    with transaction(Session(bind=conn, expire_on_commit=False)) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def autocommit(conn: Connection, statement: Callable[[Connection], T]) -> T:
    """Run ``statement`` on ``conn`` outside any transaction (one round trip, no BEGIN or
    COMMIT), then give the connection back in its default isolation level."""
    default = conn.default_isolation_level
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        result = statement(conn)
        conn.commit()
    finally:
        conn.execution_options(isolation_level=default)
    return result


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


# The dependencies that do no I/O are ``async def`` so FastAPI runs them on the event
# loop: a plain ``def`` dependency costs a hop to the thread pool and back per request.


async def presented_key(
    api_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The key the caller sent; 401 when none."""
    key = api_key or (bearer.credentials if bearer else None)
    if not key:
        raise ApiError(401, MISSING_KEY_MESSAGE, headers={"WWW-Authenticate": "Bearer"})
    return key.strip()


PresentedKey = Annotated[str, Depends(presented_key)]


@dataclass(frozen=True)
class TenantContext:
    """The authenticated organization key of this request."""

    organization_id: str
    key_id: str
    permissions: Permissions
    request_id: str
    ip_address: str | None = None
    actor_type: str = "apikey"

    def audit(
        self,
        session: Session,
        action: str,
        target_type: str,
        target_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Write this key's ``action`` on a target of its organization to the audit log."""
        record_audit(
            session,
            self.organization_id,
            actor_type=self.actor_type,
            actor_id=self.key_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            request_id=self.request_id,
            ip_address=self.ip_address,
            details=details,
        )


def client_address(request: Request) -> str | None:
    """The address a request came from, as the server sees it (behind a reverse proxy,
    the client's own when the proxy is trusted: uvicorn's ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else None


def _invalid() -> ApiError:
    return ApiError(401, INVALID_KEY_MESSAGE, headers={"WWW-Authenticate": "Bearer"})


def _limit_headers(limit: int, remaining: int, reset_s: int) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(reset_s),
    }


def _refused(refusal: KeyRefusal) -> ApiError:
    if refusal.reason == "invalid":
        return _invalid()
    headers: dict[str, str] = {}
    if refusal.retry_after_s is not None:
        headers["Retry-After"] = str(refusal.retry_after_s)
    if refusal.reason == "quota" and refusal.retry_after_s is None:
        # Nothing will bring it back: a distinct type and no Retry-After, so clients stop.
        return ApiError(
            429,
            "API key quota exhausted and it has no refill: do not retry, use another key",
            type_="quota_exhausted",
        )
    if refusal.reason == "quota":
        return ApiError(
            429, "API key quota exceeded until its refill", type_="quota_exceeded", headers=headers
        )
    if refusal.rate_limit_max is not None:
        headers.update(_limit_headers(refusal.rate_limit_max, 0, refusal.retry_after_s or 0))
    return ApiError(429, "API key rate limit reached", type_="rate_limited", headers=headers)


def current_key(
    request: Request, response: Response, key: PresentedKey, conn: ConnectionDep
) -> TenantContext:
    """Authenticate an organization key, spending one request of its quota and rate and
    counting it in the organization's usage."""
    if not looks_like_key(key, prefixes=(API_KEY_PREFIX,)):
        raise _invalid()
    digest = hash_key(key)
    now = _now(request)
    used: KeyUse | None = autocommit(conn, lambda c: use_api_key(c, digest, now=now))
    if used is None:
        refusal = autocommit(conn, lambda c: explain_refusal(c, digest, now=now))
        raise _refused(refusal)
    # Counted in memory, written in batches (core.usage.meter): no write per request.
    request.app.state.usage_meter.count(used.organization_id, now)
    if used.rate_limit_max is not None and used.rate_limit_window_ms is not None:
        response.headers.update(
            _limit_headers(
                used.rate_limit_max,
                used.rate_limit_max - used.request_count,
                -(-used.rate_limit_window_ms // 1000),
            )
        )
    return TenantContext(
        organization_id=used.organization_id,
        key_id=used.key_id,
        permissions=used.permissions,
        request_id=request.state.request_id,
        ip_address=client_address(request),
    )


CurrentKey = Annotated[TenantContext, Depends(current_key)]


def requires(permission: str) -> Any:
    """``Depends`` that authenticates the key and demands ``permission`` (403 naming it)."""
    split_permission(permission)  # a typo fails at import, not at request time

    async def check(ctx: CurrentKey) -> TenantContext:
        require_permission(ctx.permissions, permission)
        return ctx

    check.__name__ = f"requires_{permission.replace(':', '_')}"
    return Depends(check)


def throttled(permission: str, action: str, per_minute: Callable[[Settings], int]) -> Any:
    """Like :func:`requires`, then counts one ``action`` of the key's organization: past
    ``per_minute(settings)`` in the current minute, 429 ``throttled`` with Retry-After.

    The counter is a database row (:mod:`core.throttle`), so the limit holds across every
    web process and in embedded mode; it is spent in autocommit before the route runs, and
    only by keys allowed to act.
    """
    permitted = requires(permission)

    # The dependency is a default, not in Annotated: annotations are strings here, and a
    # local name inside one would not resolve.
    def check(
        request: Request, conn: ConnectionDep, ctx: TenantContext = permitted
    ) -> TenantContext:
        limit = per_minute(request.app.state.settings)
        now = _now(request)
        admission = autocommit(
            conn,
            lambda c: hit(
                c,
                f"{action}:{ctx.organization_id}",
                limit=limit,
                window_s=ORG_THROTTLE_WINDOW_S,
                now=now,
                organization_id=ctx.organization_id,
            ),
        )
        if not admission.allowed:
            retry = admission.retry_after_s
            raise ApiError(
                429,
                f"{action} is limited to {limit} a minute per organization; retry in {retry} s",
                type_="throttled",
                headers={"Retry-After": str(retry), **_limit_headers(limit, 0, retry)},
            )
        return ctx

    check.__name__ = f"throttled_{action.replace('-', '_')}"
    return Depends(check)


@dataclass(frozen=True)
class OperatorContext:
    """The authenticated operator key of this request."""

    key_id: str
    name: str
    request_id: str
    ip_address: str | None = None
    actor_type: str = "operator"

    def audit(
        self,
        session: Session,
        organization_id: str | None,
        *,
        action: str,
        target_type: str,
        target_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        record_audit(
            session,
            organization_id,
            actor_type=self.actor_type,
            actor_id=self.key_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            request_id=self.request_id,
            ip_address=self.ip_address,
            details=details,
        )


def current_operator(request: Request, key: PresentedKey, conn: ConnectionDep) -> OperatorContext:
    """Authenticate an operator key; an organization key gets 403 (wrong kind of caller)."""
    if looks_like_key(key, prefixes=(API_KEY_PREFIX,)):
        raise ApiError(403, "operator routes need an operator key")
    if not looks_like_key(key, prefixes=(OPERATOR_KEY_PREFIX,)):
        raise _invalid()
    digest = hash_key(key)
    now = _now(request)
    used = autocommit(conn, lambda c: use_operator_key(c, digest, now=now))
    if used is None:
        raise _invalid()
    return OperatorContext(
        key_id=used.key_id,
        name=used.name,
        request_id=request.state.request_id,
        ip_address=client_address(request),
    )


OperatorDep = Annotated[OperatorContext, Depends(current_operator)]


def request_broker(request: Request) -> dramatiq.Broker:
    """The broker routes enqueue to: the app's own, or built from settings on first use."""
    broker: dramatiq.Broker | None = request.app.state.broker
    if broker is None:
        from workers.broker import build_broker  # noqa: PLC0415 (only when first needed)

        broker = request.app.state.broker = build_broker(request.app.state.settings)
    return broker


def fetch_guard(request: Request) -> tuple[GuardPolicy, Resolver | None]:
    """The fetcher's address policy (its allowlist from settings) and name resolver
    (the system's unless the app was given one: tests)."""
    settings = request.app.state.settings
    policy = GuardPolicy.from_allowlist(settings.fetch_allowlist_entries)
    return policy, getattr(request.app.state, "fetch_resolver", None)
