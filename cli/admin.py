"""Administration from the shell: schema migrations, organizations, members, keys, searches."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.common import engine_for, load, migrated_engine
from core.clock import utcnow
from core.db import migrate
from core.db.session import unit_of_work
from core.errors import ConfigError

db_app = typer.Typer(help="Database schema migrations and retention.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations (tenants).", no_args_is_help=True)
key_app = typer.Typer(help="API keys of organizations and operators.", no_args_is_help=True)
member_app = typer.Typer(help="Members of organizations.", no_args_is_help=True)
search_app = typer.Typer(help="Saved news searches.", no_args_is_help=True)


# --- db ----------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or update the schema (SQLite or PostgreSQL)."""
    engine = engine_for(load())
    migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision.")]) -> None:
    """Undo migrations down to REVISION (``base`` removes every table)."""
    engine = engine_for(load())
    migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database."""
    typer.echo(migrate.current_revision(engine_for(load())) or "empty (no schema)")


@db_app.command("prune")
def db_prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete what the retention settings let go (NEWSMON_RETAIN_*), in small batches."""
    from core.ops.retention import RetentionPolicy, prunable, prune

    settings = load()
    engine = migrated_engine(settings)
    policy = RetentionPolicy.from_settings(settings)
    if dry_run:
        with unit_of_work(engine) as session:
            counts = prunable(session, policy, now=utcnow())
        typer.echo(json.dumps({"wouldDelete": counts}))
        return
    report = prune(engine, policy, now=utcnow())
    typer.echo(json.dumps({"deleted": report.deleted}))


# --- org / key / search --------------------------------------------------------------


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Display name.")],
    slug: Annotated[str | None, typer.Option(help="URL name; derived from NAME if absent.")] = None,
) -> None:
    """Create an organization and print its id and slug."""
    from core.tenancy.organizations import create_organization

    engine = migrated_engine(load())
    with unit_of_work(engine) as session:
        org = create_organization(session, name=name, slug=slug)
        typer.echo(json.dumps({"id": org.id, "slug": org.slug, "name": org.name}))


@org_app.command("limits")
def org_limits(
    slug: Annotated[str, typer.Argument(help="Organization slug.")],
    max_searches: Annotated[
        int | None, typer.Option(min=0, metavar="N", help="At most N searches.")
    ] = None,
    max_sources: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="At most N distinct sources across its searches."),
    ] = None,
    max_deliveries_per_day: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="At most N digests sent per UTC day; more wait."),
    ] = None,
    lift: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="Remove a limit: maxSearches, maxSources or maxDeliveriesPerDay."
        ),
    ] = None,
) -> None:
    """Show the organization's limits, after setting the ones given (others are kept)."""
    from core.tenancy.organizations import organization_by_slug
    from core.usage.limits import LIMIT_NAMES, Limits, read_limits, set_limits

    for name in lift or []:
        if name not in LIMIT_NAMES:
            raise typer.BadParameter(f"one of {', '.join(LIMIT_NAMES)}", param_hint="--lift")
    given = {
        "maxSearches": max_searches,
        "maxSources": max_sources,
        "maxDeliveriesPerDay": max_deliveries_per_day,
    }
    engine = migrated_engine(load())
    with unit_of_work(engine) as session:
        organization = organization_by_slug(session, slug)
        wanted = dict(read_limits(session, organization.id).__dict__)
        wanted.update({name: value for name, value in given.items() if value is not None})
        wanted.update(dict.fromkeys(lift or []))
        limits = set_limits(session, organization.id, Limits(**wanted))
    typer.echo(json.dumps(limits.__dict__))


@org_app.command("usage")
def org_usage(
    slug: Annotated[str, typer.Argument(help="Organization slug.")],
    month: Annotated[
        str | None, typer.Option(metavar="YYYY-MM", help="A month (UTC) [default: this month].")
    ] = None,
) -> None:
    """Print the organization's usage of a month: fetches, stories stored, deliveries sent,
    API requests (those of running web processes within NEWSMON_USAGE_FLUSH_SECONDS)."""
    from core.tenancy.organizations import organization_by_slug
    from core.usage.months import month_of, parse_month
    from core.usage.report import usage_months

    shown = parse_month(month, "--month") if month else month_of(utcnow())
    engine = migrated_engine(load())
    with unit_of_work(engine) as session:
        organization = organization_by_slug(session, slug)
        [usage] = usage_months(session, organization.id, [shown])
    typer.echo(json.dumps(usage.__dict__))


@member_app.command("add")
def member_add(
    org: Annotated[str, typer.Option(help="Organization slug.")],
    email: Annotated[str, typer.Option(help="The user's email (a user is created if new).")],
    role: Annotated[str, typer.Option(help="owner, admin or member.")] = "member",
    name: Annotated[str | None, typer.Option(help="Name of a new user.")] = None,
) -> None:
    """Make a user a member with ROLE, or give a member that role (no invitation, no mail)."""
    from core.tenancy.members import enrol
    from core.tenancy.organizations import organization_by_slug

    engine = migrated_engine(load())
    with unit_of_work(engine) as session:
        organization = organization_by_slug(session, org)
        member = enrol(session, organization.id, email, role, name)
        out = {"memberId": member.id, "userId": member.userId, "role": member.role}
    typer.echo(json.dumps(out))


def _parse_permissions(text: str) -> dict[str, list[str]]:
    perms: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        resource, _, action = item.partition(":")
        perms.setdefault(resource, []).append(action)
    return perms


@key_app.command("create")
def key_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    org: Annotated[str | None, typer.Option(help="Organization slug.")] = None,
    operator: Annotated[bool, typer.Option("--operator", help="An operator key.")] = False,
    permissions: Annotated[
        str | None,
        typer.Option(help="Comma-separated resource:action list; default: every permission."),
    ] = None,
    expires_in_days: Annotated[
        int | None,
        typer.Option(min=1, metavar="DAYS", help="The key stops working after DAYS days."),
    ] = None,
    remaining: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="Request quota: N requests, then 429."),
    ] = None,
    rate_limit_max: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Rate limit: at most N requests per --rate-limit-window-s seconds.",
        ),
    ] = None,
    rate_limit_window_s: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="SECONDS", help="Window of --rate-limit-max (give both or neither)."
        ),
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from core.keys import RESOURCE_ACTIONS
    from core.tenancy.api_keys import create_api_key, create_operator_key
    from core.tenancy.organizations import organization_by_slug

    if operator == (org is not None):
        raise ConfigError("--org/--operator", "give exactly one of --org SLUG or --operator")
    engine = migrated_engine(load())
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with unit_of_work(engine) as session:
        if operator:
            issued = create_operator_key(session, name=name, expires_at=expires)
        else:
            assert org is not None
            organization = organization_by_slug(session, org)
            perms = (
                _parse_permissions(permissions)
                if permissions is not None
                else {r: sorted(a) for r, a in RESOURCE_ACTIONS.items()}
            )
            issued = create_api_key(
                session,
                organization.id,
                name=name,
                permissions=perms,
                expires_at=expires,
                remaining=remaining,
                rate_limit_max=rate_limit_max,
                rate_limit_window_ms=rate_limit_window_s * 1000 if rate_limit_window_s else None,
            )
    typer.echo(json.dumps({"id": issued.id, "key": issued.key, "start": issued.start}))
    typer.echo("Store this key now: it is shown only once.", err=True)


@search_app.command("add")
def search_add(
    org: Annotated[str, typer.Option(help="Organization slug.")],
    name: Annotated[str, typer.Option(help="Name of the search (unique in the organization).")],
    feed: Annotated[list[str] | None, typer.Option(help="Feed URL to watch (repeatable).")] = None,
    opml: Annotated[
        Path | None,
        typer.Option(
            help="OPML file whose feeds to watch (with any --feed).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    query: Annotated[str, typer.Option(help="Boolean query, e.g. '\"open source\" AND ai'.")] = "",
    cron: Annotated[str | None, typer.Option(help="Cron schedule, e.g. '*/15 * * * *'.")] = None,
    tz: Annotated[
        str | None, typer.Option(help="IANA time zone of the --cron schedule [default: UTC].")
    ] = None,
    catch_up: Annotated[
        str | None,
        typer.Option(help="once, all or skip: runs missed while down [default: once]."),
    ] = None,
) -> None:
    """Create a search over feeds (and an OPML file's feeds), optionally with a cron schedule.

    Refused with one line: no feed at all, a feed on a loopback, private or metadata
    address (unless NEWSMON_FETCH_ALLOWLIST allows it), --tz or --catch-up without
    --cron, a name the organization already uses.
    """
    from core.fetch import GuardPolicy
    from core.news.feed_targets import check_feed_urls, refuse_taken_name
    from core.news.opml import MAX_OPML_BYTES, parse_opml
    from core.news.searches import add_schedule, create_search, validate_search_query
    from core.tenancy.organizations import organization_by_slug

    for option, value in (("--tz", tz), ("--catch-up", catch_up)):
        if value is not None and cron is None:
            raise typer.BadParameter("only applies to a schedule: add --cron", param_hint=option)
    urls = list(feed or [])
    if opml is not None:
        with opml.open("rb") as handle:  # read one byte past the cap: parse_opml refuses it
            urls += [source.url for source in parse_opml(handle.read(MAX_OPML_BYTES + 1))]
    if not urls:
        raise typer.BadParameter(
            "give at least one feed (--feed URL or --opml FILE)", param_hint="--feed"
        )

    settings = load()
    engine = migrated_engine(settings)
    with unit_of_work(engine) as session:
        organization = organization_by_slug(session, org)
        refuse_taken_name(session, organization.id, name)
        search_query = {"query": query, "sources": [{"type": "feed", "url": u} for u in urls]}
        validate_search_query(search_query)  # a bad scheme is named before any lookup
        check_feed_urls(GuardPolicy.from_allowlist(settings.fetch_allowlist_entries), urls)
        news = create_search(session, organization.id, name=name, search_query=search_query)
        out: dict[str, object] = {"id": news.id, "name": news.name}
        if cron:
            sched = add_schedule(
                session,
                organization.id,
                news.id,
                cron_expr=cron,
                timezone=tz or "UTC",
                catch_up=catch_up or "once",
                now=utcnow(),
            )
            out["schedule"] = {"id": sched.id, "nextRun": sched.nextRun.isoformat()}  # type: ignore[union-attr]
    typer.echo(json.dumps(out))
