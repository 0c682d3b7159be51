"""``newsmon``: run the processes and administer tenants from the shell.

Every error a user can cause ends as one line on stderr and exit status 2. The commands
live in ``cli.admin`` (db, org, member, key, search), ``cli.channels`` (channel),
``cli.processes`` (web, scheduler, worker, run, demo), ``cli.deliveries`` (delivery),
``cli.dlq`` and ``cli.secret_keys`` (secrets).
"""

from __future__ import annotations

import sys

import typer

# typer (pinned to 0.29) carries its own copy of click; its usage errors live there.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from cli import processes
from cli.admin import db_app, key_app, member_app, org_app, search_app
from cli.channels import channel_app
from cli.deliveries import delivery_app
from cli.dlq import dlq_app
from cli.health import health
from cli.secret_keys import secrets_app
from core.errors import NewsmonError

app = typer.Typer(
    help="newsmon: multi-tenant news monitoring (scheduler, workers, admin API).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no boxes, flags without a <bool> type
    add_completion=False,
)
for command in (
    processes.web,
    processes.scheduler,
    processes.worker,
    processes.run,
    processes.demo,
    health,
):
    app.command()(command)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(member_app, name="member")
app.add_typer(key_app, name="key")
app.add_typer(search_app, name="search")
app.add_typer(channel_app, name="channel")
app.add_typer(delivery_app, name="delivery")
app.add_typer(dlq_app, name="dlq")
app.add_typer(secrets_app, name="secrets")


def main() -> None:
    """Console entry point: user errors and usage errors become one line and exit status 2.

    typer runs outside click's standalone mode so that a usage error (missing argument,
    unknown option, bad value) reaches us as an exception instead of a printed block.
    """
    try:
        code = app(prog_name="newsmon", standalone_mode=False)
    except NewsmonError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except NoArgsIsHelpError as exc:
        typer.echo(exc.format_message(), err=True)  # a group without a command: its help
        sys.exit(exc.exit_code)
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "newsmon"
        typer.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # e.g. a file option naming a missing file
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
