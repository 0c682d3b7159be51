"""``newsmon channel``: an organization's delivery channels from the shell, each config
field an option (no JSON to write), validated and sealed as the API does."""

from __future__ import annotations

import base64
import json
import secrets
import sys
from typing import Annotated, Any

import typer

from cli.common import load, migrated_engine
from core.clock import utcnow
from core.db.session import unit_of_work
from core.errors import ValidationError

channel_app = typer.Typer(help="Delivery channels of organizations.", no_args_is_help=True)

#: Random bytes of a webhook signing secret made for the user (Standard Webhooks).
WEBHOOK_SECRET_BYTES = 24
#: Channel types and the options each one takes.
TYPE_OPTIONS = {
    "slack": "--url",
    "webhook": "--url [--secret]",
    "apprise": "--url",
    "email": "--host --from --to [--port --security --username --password]",
    "file": "--directory [--format]",
}

Org = Annotated[str, typer.Option(help="Organization slug.")]


def _config(type_: str, options: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The channel config of ``type_`` from the command's options, and a webhook secret
    made here (shown once) when none was given. Options of other types are refused."""
    wanted = {
        "slack": {"url"},
        "apprise": {"url"},
        "webhook": {"url", "secret"},
        "email": {"host", "port", "security", "username", "password", "sender", "to"},
        "file": {"directory", "formats"},
    }.get(type_)
    if wanted is None:
        raise ValidationError(f"must be one of {', '.join(TYPE_OPTIONS)}", field="type")
    given = {k: v for k, v in options.items() if v not in (None, [])}
    stray = sorted(set(given) - wanted)
    if stray:
        names = ", ".join("--" + ("from" if s == "sender" else s.rstrip("s")) for s in stray)
        raise ValidationError(
            f"{names} not used by a {type_} channel (it takes {TYPE_OPTIONS[type_]})", "type"
        )
    made_secret = None
    if type_ == "webhook" and "secret" not in given:
        raw = base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode("ascii")
        made_secret = given["secret"] = f"whsec_{raw}"
    if "sender" in given:
        given["from"] = given.pop("sender")
    return given, made_secret


@channel_app.command("add")
def channel_add(
    org: Org,
    type_: Annotated[str, typer.Option("--type", help=f"Channel type: {', '.join(TYPE_OPTIONS)}.")],
    name: Annotated[str, typer.Option(help="Name shown in lists (default: the type).")] = "",
    url: Annotated[str | None, typer.Option(help="slack, webhook, apprise: target URL.")] = None,
    secret: Annotated[
        str | None, typer.Option(help="webhook: signing secret whsec_... (default: made now).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="email: SMTP host.")] = None,
    port: Annotated[int | None, typer.Option(help="email: SMTP port (587).")] = None,
    security: Annotated[
        str | None, typer.Option(help="email: starttls (default), tls or none.")
    ] = None,
    username: Annotated[str | None, typer.Option(help="email: SMTP user.")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="email: SMTP password (or NEWSMON_SMTP_PASSWORD).", envvar="NEWSMON_SMTP_PASSWORD"
        ),
    ] = None,
    sender: Annotated[str | None, typer.Option("--from", help="email: sender address.")] = None,
    to: Annotated[list[str] | None, typer.Option(help="email: recipient (repeatable).")] = None,
    directory: Annotated[
        str | None, typer.Option(help="file: folder below the organization's file root.")
    ] = None,
    format_: Annotated[
        list[str] | None, typer.Option("--format", help="file: markdown or html (repeatable).")
    ] = None,
    search: Annotated[
        list[str] | None, typer.Option(help="Id of a search to deliver here (repeatable).")
    ] = None,
) -> None:
    """Create a channel (its target is checked like the API's) and link it to searches."""
    from core.delivery.channel_editing import create_channel, link_channel
    from core.delivery.channels import public_config
    from core.tenancy.organizations import organization_by_slug
    from workers.pipeline import delivery_context

    config, made_secret = _config(
        type_,
        {
            "url": url,
            "secret": secret,
            "host": host,
            "port": port,
            "security": security,
            "username": username,
            "password": password,
            "sender": sender,
            "to": to,
            "directory": directory,
            "formats": format_,
        },
    )
    settings = load()
    send = delivery_context(settings)
    with unit_of_work(migrated_engine(settings)) as session:
        organization = organization_by_slug(session, org)
        channel = create_channel(
            session,
            organization.id,
            name=name.strip() or type_,
            type_=type_,
            config=config,
            keyring=send.keyring,
            policy=send.policy,
            resolver=send.resolver,
            file_root=send.file_root,
        )
        for news_id in search or []:
            link_channel(session, organization.id, news_id, channel.id)
        out = {
            "id": channel.id,
            "name": channel.name,
            "type": channel.type,
            "config": public_config(channel.type, channel.config),
            "searches": list(search or []),
        }
    typer.echo(json.dumps(out))
    if made_secret:
        typer.echo(
            f"Webhook signing secret (verify deliveries with it; shown only once): {made_secret}",
            err=True,
        )


@channel_app.command("list")
def channel_list(org: Org) -> None:
    """The organization's channels, one JSON object a line (secrets masked)."""
    from sqlalchemy import select

    from core.db.models import Channel, NewsChannel
    from core.delivery.channels import public_config
    from core.tenancy.organizations import organization_by_slug

    with unit_of_work(migrated_engine(load())) as session:
        organization = organization_by_slug(session, org)
        channels = session.scalars(
            select(Channel).where(Channel.organizationId == organization.id).order_by(Channel.id)
        )
        for channel in channels:
            searches = session.scalars(
                select(NewsChannel.newsId).where(
                    NewsChannel.organizationId == organization.id,
                    NewsChannel.channelId == channel.id,
                )
            )
            typer.echo(
                json.dumps(
                    {
                        "id": channel.id,
                        "name": channel.name,
                        "type": channel.type,
                        "isActive": channel.isActive,
                        "status": channel.status,
                        "config": public_config(channel.type, channel.config),
                        "searches": sorted(searches),
                    }
                )
            )


@channel_app.command("test")
def channel_test(
    org: Org, channel_id: Annotated[str, typer.Argument(help="Id of the channel.")]
) -> None:
    """Send a sample digest to the channel now and print the outcome (exit 1 unless sent);
    nothing is recorded."""
    from core.delivery.deliveries import send_test_digest
    from core.tenancy.organizations import organization_by_slug
    from workers.pipeline import delivery_context

    settings = load()
    send = delivery_context(settings)
    with unit_of_work(migrated_engine(settings)) as session:
        organization = organization_by_slug(session, org)
        outcome = send_test_digest(session, organization.id, channel_id, send, now=utcnow())
    typer.echo(
        json.dumps(
            {
                "kind": outcome.kind,
                "error": outcome.error,
                "permanent": outcome.permanent,
                "status": outcome.status,
                "response": outcome.response,
            }
        )
    )
    if outcome.kind != "sent":
        sys.exit(1)
