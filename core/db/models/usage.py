"""Usage counters: what each organization consumed per calendar month (UTC)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, Timestamps

#: The counters of a ``usage`` row, in the order the API shows them.
USAGE_COUNTERS = ("fetches", "storiesStored", "deliveriesSent", "apiRequests")


class Usage(Timestamps, Base):
    """One organization's counters for one month (``month``: ``YYYY-MM``, UTC).

    Counted as things happen (see :mod:`core.usage.counters`), never recomputed from the
    rows they count: retention prunes stories and deliveries, and a month's usage must
    stay what it was. Kept until the organization is deleted (one small row a month).
    """

    __tablename__ = "usage"
    __table_args__ = (
        CheckConstraint(
            '"fetches" >= 0 AND "storiesStored" >= 0 AND "deliveriesSent" >= 0 '
            'AND "apiRequests" >= 0',
            name="counters_not_negative",
        ),
    )

    organizationId: Mapped[str] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[str] = mapped_column(String(7), primary_key=True, index=True)
    fetches: Mapped[int] = mapped_column(BigInteger, default=0)
    storiesStored: Mapped[int] = mapped_column(BigInteger, default=0)
    deliveriesSent: Mapped[int] = mapped_column(BigInteger, default=0)
    apiRequests: Mapped[int] = mapped_column(BigInteger, default=0)
