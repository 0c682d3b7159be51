"""Channels of the caller's organization: CRUD with write-only secrets, and a test send.

Responses show a channel's config through :func:`core.delivery.channels.public_config`:
secret fields masked, a secret URL by its masked form; the clear value is never returned
and never written to the audit log (only field names are).
"""

# Path and query parameters keep the schema's camelCase names (channelId).
# ruff: noqa: N803

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, create_model
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from api.deps import SessionDep, TenantContext, requires, throttled
from api.errors import ERROR_RESPONSES
from api.pagination import Cursor, Limit, Page, page_of, paginate
from api.schemas import NON_BLANK, Out, PatchBody, StrictBody, document
from core.clock import utcnow
from core.db.models import Channel
from core.delivery import channels as ch
from core.delivery.channel_editing import (
    create_channel,
    delete_channel,
    get_channel,
    update_channel,
)
from core.delivery.channels import public_config
from core.delivery.deliveries import SendContext, send_test_digest
from core.errors import ValidationError

router = APIRouter(prefix="/channels", tags=["channels"], responses=ERROR_RESPONSES)

#: Longest channel name accepted.
MAX_CHANNEL_NAME_LENGTH = 255

_EXAMPLE: dict[str, Any] = {
    "name": "Team hook",
    "type": "webhook",
    "config": {
        "url": "https://hooks.example.com/newsmon",
        "secret": "whsec_a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=",
    },
}


def _any_config(value: object) -> object:
    if not isinstance(value, dict):
        raise PydanticCustomError("dict_type", "Input should be a valid dictionary")
    return value  # checked against the channel's own type when it is updated


class _ChannelCreate(StrictBody):
    name: str = Field(default="", max_length=MAX_CHANNEL_NAME_LENGTH)
    type: str
    config: dict[str, Any]
    isActive: bool = True


def _create_body(type_: str, config: type[BaseModel]) -> type[_ChannelCreate]:
    """The body creating a channel of ``type_``: its ``config`` checked by its model."""
    tag: Any = Literal[type_]
    examples = [_EXAMPLE["config"]] if type_ == _EXAMPLE["type"] else None
    return create_model(
        f"{type_.title()}ChannelCreate",
        __base__=_ChannelCreate,
        type=(tag, ...),
        config=(Annotated[dict[str, Any], document(config), Field(examples=examples)], ...),
    )


if TYPE_CHECKING:
    ChannelCreate = _ChannelCreate
    AnyConfig = dict[str, Any]
else:
    #: A new channel, told apart by ``type``: one body per entry of ``ch.CONFIG_MODELS``.
    ChannelCreate = Annotated[
        Union[tuple(_create_body(t, m) for t, m in ch.CONFIG_MODELS.items())],  # noqa: UP007
        Field(discriminator="type"),
    ]
    #: The config of any channel type (checked against the channel's own type on update).
    AnyConfig = Annotated[
        dict[str, Any],
        PlainValidator(
            _any_config,
            json_schema_input_type=Union[tuple(ch.CONFIG_MODELS.values())],  # noqa: UP007
        ),
    ]


class ChannelUpdate(PatchBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Renamed", "isActive": False}]}
    )

    name: str | None = Field(
        default=None, max_length=MAX_CHANNEL_NAME_LENGTH, json_schema_extra=NON_BLANK
    )
    config: AnyConfig | None = Field(
        default=None,
        description="the whole new config of the channel's type, secrets included (write-only)",
    )
    isActive: bool | None = None


class ChannelOut(Out):
    id: str
    name: str
    type: str
    config: dict[str, Any] = Field(description="secrets masked")
    isActive: bool
    status: str
    consecutiveFailures: int
    lastError: str | None
    createdAt: datetime
    updatedAt: datetime


class TestOutcome(Out):
    """Exactly what the test send achieved (nothing is recorded)."""

    kind: Literal["sent", "failed", "unknown"]
    error: str | None
    permanent: bool
    status: int | None
    response: str | None
    retryAfter: float | None


def channel_out(channel: Channel) -> ChannelOut:
    data = {c: getattr(channel, c) for c in ChannelOut.model_fields}
    data["config"] = public_config(channel.type, channel.config)
    return ChannelOut.model_validate(data)


def send_context(request: Request) -> SendContext:
    """The keyring, guarded client and address policy of channel sends, built on first use
    like the deliver actor's (tests set ``app.state.send_context``)."""
    ctx: SendContext | None = getattr(request.app.state, "send_context", None)
    if ctx is None:
        from workers.pipeline import delivery_context  # noqa: PLC0415 (first use only)

        ctx = request.app.state.send_context = delivery_context(request.app.state.settings)
    return ctx


SendContextDep = Annotated[SendContext, Depends(send_context)]
Reader = Annotated[TenantContext, requires("channels:read")]
Writer = Annotated[TenantContext, requires("channels:write")]
Tester = Annotated[
    TenantContext,
    throttled("channels:write", "channel-test", lambda settings: settings.channel_test_per_minute),
]


@router.post("", status_code=201)
def create(
    body: ChannelCreate,
    ctx: Writer,
    session: SessionDep,
    send: SendContextDep,
) -> ChannelOut:
    """Create a channel; a bad config or a target on a private address is a 422."""
    if not body.name.strip():
        body.name = body.type
    channel = create_channel(
        session,
        ctx.organization_id,
        name=body.name.strip(),
        type_=body.type,
        config=body.config,
        keyring=send.keyring,
        policy=send.policy,
        resolver=send.resolver,
        file_root=send.file_root,
    )
    channel.isActive = body.isActive
    session.flush()
    ctx.audit(session, "channel.create", "channel", channel.id, {"type": channel.type})
    return channel_out(channel)


@router.get("")
def list_channels(
    ctx: Reader, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ChannelOut]:
    query = select(Channel).where(Channel.organizationId == ctx.organization_id)
    rows = list(session.scalars(paginate(query, Channel.id, cursor, limit)))
    return page_of([channel_out(r) for r in rows], [r.id for r in rows], limit)


@router.get("/{channelId}")
def read_channel(channelId: str, ctx: Reader, session: SessionDep) -> ChannelOut:
    return channel_out(get_channel(session, ctx.organization_id, channelId))


@router.patch("/{channelId}")
def patch_channel(
    channelId: str, body: ChannelUpdate, ctx: Writer, session: SessionDep, send: SendContextDep
) -> ChannelOut:
    """Rename, (de)activate, or replace the config (which resets a failing channel)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes and not changes["name"].strip():
        raise ValidationError("must not be blank", field="name")
    channel = update_channel(
        session,
        ctx.organization_id,
        channelId,
        changes,
        keyring=send.keyring,
        policy=send.policy,
        resolver=send.resolver,
        file_root=send.file_root,
    )
    ctx.audit(session, "channel.update", "channel", channel.id, {"fields": sorted(changes)})
    return channel_out(channel)


@router.delete("/{channelId}", status_code=204)
def remove_channel(channelId: str, ctx: Writer, session: SessionDep) -> Response:
    """Delete a channel with its links and delivery records."""
    delete_channel(session, ctx.organization_id, channelId)
    ctx.audit(session, "channel.delete", "channel", channelId)
    return Response(status_code=204)


@router.post("/{channelId}/test")
def test_channel(
    channelId: str, ctx: Tester, session: SessionDep, send: SendContextDep
) -> TestOutcome:
    """Send a sample digest now and answer the exact outcome (the channel's health and
    delivery history are untouched). A few a minute per organization: 429 past them."""
    get_channel(session, ctx.organization_id, channelId)  # 404 without echoing the id
    outcome = send_test_digest(session, ctx.organization_id, channelId, send, now=utcnow())
    ctx.audit(session, "channel.test", "channel", channelId, {"outcome": outcome.kind})
    return TestOutcome(
        kind=outcome.kind,
        error=outcome.error,
        permanent=outcome.permanent,
        status=outcome.status,
        response=outcome.response,
        retryAfter=outcome.retry_after,
    )
