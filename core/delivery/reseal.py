"""Re-sealing every channel secret under the newest key (``newsmon secrets reseal``), the
middle step of a key rotation: add the new key in front of ``NEWSMON_ENCRYPTION_KEYS`` on
every process, reseal, then drop the old key.

Channel configs are the only values sealed with the keyring. They are walked in id order,
``batch_size`` channels per transaction, each batch's rows locked (``FOR UPDATE``) while
they are read and rewritten, so an edit of a channel that lands meanwhile is neither lost
nor overwritten, and workers reading a config see the old or the new seal, both of which
open during the overlap. A committed batch stays done: an interrupted run loses at most
the batch in hand, and running again skips what is already under the newest key.

Each seal is opened before anything is written (:meth:`~core.secrets.Keyring.rotate`):
a seal that opens under no configured key (an unknown key, or authentication failure:
tampered, or moved from another organization's or channel's row) leaves its channel
untouched and is reported by channel id with a reason that never contains a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from core.db.models import Channel
from core.db.session import unit_of_work
from core.delivery.channels import SECRET_FIELDS
from core.secrets import Keyring, SecretsError, channel_aad

#: Channels re-sealed per transaction: small, so a batch holds its row locks briefly and
#: an interruption loses little.
RESEAL_BATCH_SIZE = 100
#: Channel types that have sealed fields.
SEALED_TYPES = tuple(type_ for type_, fields in SECRET_FIELDS.items() if fields)


@dataclass
class ResealReport:
    """What a reseal did, counted in channels; ``failed`` maps channel ids to reasons."""

    newest_kid: str
    resealed: int = 0
    current: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.newest_kid,
            "resealed": self.resealed,
            "alreadyCurrent": self.current,
            "failed": [{"channelId": id_, "reason": why} for id_, why in self.failed.items()],
        }


def reseal_channels(
    engine: Engine,
    keyring: Keyring,
    *,
    batch_size: int = RESEAL_BATCH_SIZE,
    after_batch: Callable[[ResealReport], None] | None = None,
) -> ResealReport:
    """Seal every channel secret under ``keyring``'s newest key, batch by batch (each
    committed before ``after_batch`` is called with the running report)."""
    report = ResealReport(keyring.newest_kid)
    last_id = ""
    while True:
        with unit_of_work(engine) as session:
            batch = session.scalars(
                select(Channel)
                .where(Channel.type.in_(SEALED_TYPES), Channel.id > last_id)
                .order_by(Channel.id)
                .limit(batch_size)
                .with_for_update()
            ).all()
            for channel in batch:
                _reseal(channel, keyring, report)
        if not batch:
            return report
        last_id = batch[-1].id
        if after_batch is not None:
            after_batch(report)


def _reseal(channel: Channel, keyring: Keyring, report: ResealReport) -> None:
    stored = channel.config
    aad = channel_aad(channel.organizationId, channel.id)
    sealed: dict[str, str] = {}
    try:
        for name in SECRET_FIELDS[channel.type]:
            value = stored.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise SecretsError(f"sealed field {name} is not a string")
            sealed[name] = keyring.rotate(value, aad)
    except SecretsError as exc:
        report.failed[channel.id] = str(exc)
        return
    if all(stored[name] == envelope for name, envelope in sealed.items()):
        report.current += 1
        return
    channel.config = {**stored, **sealed}
    report.resealed += 1
