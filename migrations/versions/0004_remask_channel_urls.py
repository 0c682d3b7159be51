"""mask stored channel URLs under the current rule

The masked form of a secret URL kept beside its seal (``config.urlMasked``) used to show
lower-case path words and numbers, which for some targets were the secret itself (an
ntfy topic, a Slack token in lower case). Masking the stored form again needs no key:
``mask_url`` hides every part the current rule hides, whatever it holds. The current rule
is imported on purpose: this migration brings stored forms to whatever it is.

Revision ID: 0004_remask_channel_urls
Revises: 0003_throttle_windows
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.masking import mask_url

revision: str = "0004_remask_channel_urls"
down_revision: str | None = "0003_throttle_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Where a channel config keeps the masked form of its secret URL.
MASKED_URL_FIELD = "urlMasked"

_channels = sa.table(
    "channels",
    sa.column("id", sa.String),
    sa.column("config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_channels.c.id, _channels.c.config)).all()
    for channel_id, config in rows:
        shown = (config or {}).get(MASKED_URL_FIELD)
        if isinstance(shown, str) and mask_url(shown) != shown:
            conn.execute(
                _channels.update()
                .where(_channels.c.id == channel_id)
                .values(config={**config, MASKED_URL_FIELD: mask_url(shown)})
            )


def downgrade() -> None:
    pass  # the parts the stricter mask hid are stored nowhere else in clear
