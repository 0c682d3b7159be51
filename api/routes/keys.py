"""The organization's own API keys: create (shown once), list, read, revoke, rotate.

A key creates only keys it dominates and acts only on itself or keys it dominates
(:mod:`core.tenancy.key_limits`); reading is not acting: a ``keys:read`` key lists and
reads every key of its organization, never any key material.
"""

# Path and query parameters keep the schema's camelCase names (newsId, minScore).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import SessionDep, TenantContext, requires
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.schemas import NON_BLANK, Out, StrictBody, UtcDateTime
from core.db.models import ApiKey
from core.keys import RESOURCE_ACTIONS, parse_permissions, validate_permissions
from core.tenancy.api_keys import MAX_KEY_NAME_LENGTH, IssuedKey
from core.tenancy.key_admin import (
    create_with_limits,
    get_api_key,
    mint_api_key,
    revoke_api_key,
    rotate_api_key,
)
from core.tenancy.key_limits import KeyLimits

router = APIRouter(prefix="/keys", tags=["keys"], responses=ERROR_RESPONSES)

#: Largest quota, refill amount or rate limit accepted (fits a 32-bit column).
MAX_LIMIT_VALUE = 2**31 - 1


def _together(first: str, second: str) -> list[dict[str, Any]]:
    """JSON Schema of two limits given together (a null one counts as not given)."""
    given = {f: {"required": [f], "properties": {f: {"type": "integer"}}} for f in (first, second)}
    return [
        {"if": given[first], "then": given[second]},
        {"if": given[second], "then": given[first]},
    ]


#: JSON Schema of ``permissions``: each resource with a list of its actions.
PERMISSIONS_SCHEMA: dict[str, Any] = {
    "properties": {
        resource: {"type": "array", "items": {"type": "string", "enum": sorted(actions)}}
        for resource, actions in RESOURCE_ACTIONS.items()
    },
    "additionalProperties": False,
}


class KeyCreate(StrictBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "ci", "permissions": {"news": ["read"]}, "remaining": 1000}],
            "allOf": [
                *_together("refillInterval", "refillAmount"),
                *_together("rateLimitMax", "rateLimitTimeWindow"),
            ],
        }
    )

    name: str = Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH, json_schema_extra=NON_BLANK)
    permissions: dict[str, list[str]] = Field(default={}, json_schema_extra=PERMISSIONS_SCHEMA)
    expiresAt: UtcDateTime | None = None
    remaining: int | None = Field(default=None, ge=0, le=MAX_LIMIT_VALUE)
    refillInterval: int | None = Field(default=None, ge=1, le=MAX_LIMIT_VALUE)
    refillAmount: int | None = Field(default=None, ge=1, le=MAX_LIMIT_VALUE)
    rateLimitMax: int | None = Field(default=None, ge=1, le=MAX_LIMIT_VALUE)
    rateLimitTimeWindow: int | None = Field(default=None, ge=1, le=MAX_LIMIT_VALUE)

    def limits(self) -> KeyLimits:
        return KeyLimits(
            permissions=validate_permissions(self.permissions),
            expires_at=self.expiresAt,
            remaining=self.remaining,
            refill_amount=self.refillAmount,
            refill_interval_ms=self.refillInterval,
            rate_limit_max=self.rateLimitMax,
            rate_limit_window_ms=self.rateLimitTimeWindow,
        )


class KeyOut(Out):
    """A key as listed: ``start`` and ``prefix`` identify it; the key itself is never shown."""

    id: str
    name: str | None
    start: str | None
    prefix: str | None
    enabled: bool
    permissions: dict[str, list[str]]
    expiresAt: datetime | None
    remaining: int | None
    refillInterval: int | None
    refillAmount: int | None
    lastRefillAt: datetime | None
    rateLimitEnabled: bool
    rateLimitMax: int | None
    rateLimitTimeWindow: int | None
    requestCount: int
    lastRequest: datetime | None
    createdAt: datetime


class KeyCreated(KeyOut):
    """The created key, with ``key`` in plaintext: shown this once, stored only hashed."""

    key: str


def key_out(row: ApiKey) -> KeyOut:
    data: dict[str, Any] = {c: getattr(row, c) for c in KeyOut.model_fields if c != "permissions"}
    data["permissions"] = {r: sorted(a) for r, a in parse_permissions(row.permissions).items()}
    return KeyOut.model_validate(data)


def created_out(session: Session, organization_id: str, issued: IssuedKey) -> KeyCreated:
    row = get_api_key(session, organization_id, issued.id)
    return KeyCreated(**key_out(row).model_dump(), key=issued.key)


def issue_key(session: Session, organization_id: str, body: KeyCreate) -> KeyCreated:
    """Create a key of ``organization_id`` from ``body``, unbound (the operator routes)."""
    issued = create_with_limits(session, organization_id, body.name, body.limits())
    return created_out(session, organization_id, issued)


Reader = Annotated[TenantContext, requires("keys:read")]
Writer = Annotated[TenantContext, requires("keys:write")]


@router.post("", status_code=201)
def create_key(body: KeyCreate, ctx: Writer, session: SessionDep) -> KeyCreated:
    """Create a key with no more than the calling key has (403 naming each field that
    exceeds it). An omitted expiry or rate limit is the caller's; a caller with a quota
    must give ``remaining``, which is taken from its own quota (as is a refill, from its
    refill)."""
    issued = mint_api_key(
        session, ctx.organization_id, ctx.key_id, name=body.name, wanted=body.limits()
    )
    created = created_out(session, ctx.organization_id, issued)
    ctx.audit(session, "key.create", "apikey", created.id, {"name": created.name})
    return created


@router.get("")
def list_keys(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[KeyOut]:
    query = select(ApiKey).where(ApiKey.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, ApiKey.id, cursor, limit)))
    return page_of([key_out(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{keyId}")
def read_key(keyId: str, ctx: Reader, session: SessionDep) -> KeyOut:
    return key_out(get_api_key(session, ctx.organization_id, keyId))


@router.delete("/{keyId}", status_code=204)
def revoke_key(keyId: str, ctx: Writer, session: SessionDep) -> Response:
    """Revoke a key (itself, or one with no more than the caller has): it stops working
    at once."""
    revoke_api_key(session, ctx.organization_id, keyId, caller_key_id=ctx.key_id)
    ctx.audit(session, "key.revoke", "apikey", keyId)
    return Response(status_code=204)


@router.post("/{keyId}/rotate", status_code=201)
def rotate_key(keyId: str, ctx: Writer, session: SessionDep) -> KeyCreated:
    """Replace a key (itself, or one with no more than the caller has) by a new one with
    the same settings and usage; the old one stops working."""
    issued = rotate_api_key(session, ctx.organization_id, keyId, caller_key_id=ctx.key_id)
    ctx.audit(session, "key.rotate", "apikey", issued.id, {"replaced": keyId})
    return created_out(session, ctx.organization_id, issued)
