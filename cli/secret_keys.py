"""``newsmon secrets``: encryption keys of channel secrets at rest, and their rotation.

Rotation: ``generate-key``; put the new key first in ``NEWSMON_ENCRYPTION_KEYS`` (the old
one after it) on every process and restart them; ``reseal``; drop the old key and
restart again.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import load, migrated_engine
from core.delivery.channels import load_keyring
from core.delivery.reseal import RESEAL_BATCH_SIZE, ResealReport, reseal_channels
from core.errors import NewsmonError
from core.secrets import KEYS_SETTING, generate_key_string

secrets_app = typer.Typer(
    help="Encryption keys of channel secrets: new keys, re-sealing.", no_args_is_help=True
)


@secrets_app.command("generate-key")
def generate_key() -> None:
    """Print a new random AES-256 key (base64url) for NEWSMON_ENCRYPTION_KEYS."""
    typer.echo(generate_key_string())
    typer.echo(f"put it first in {KEYS_SETTING}, before the keys in use", err=True)


@secrets_app.command("reseal")
def reseal(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Channels per transaction.")
    ] = RESEAL_BATCH_SIZE,
) -> None:
    """Seal every channel secret under the newest key of NEWSMON_ENCRYPTION_KEYS.

    Idempotent and resumable: run it again after an interruption. Prints counts as JSON;
    exits with status 2 if any secret opens under no configured key.
    """
    settings = load()
    engine = migrated_engine(settings)
    keyring = load_keyring(settings)

    def progress(report: ResealReport) -> None:
        done = report.resealed + report.current + len(report.failed)
        typer.echo(f"{done} channels checked, {report.resealed} resealed", err=True)

    report = reseal_channels(engine, keyring, batch_size=batch_size, after_batch=progress)
    typer.echo(json.dumps(report.as_dict()))
    if report.failed:
        raise NewsmonError(
            f"{len(report.failed)} channel(s) hold secrets that open under no configured key "
            f"and were left as they are: {', '.join(report.failed)}. Keep every key still in "
            f"use in {KEYS_SETTING} (newest first) until reseal reports none; a channel "
            "whose key is lost needs its config set again"
        )
