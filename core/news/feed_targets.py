"""The early checks of a new search from the shell: its feeds may be fetched, its name
is free in the organization.

Feed hosts get the same check as channel targets at create
(:func:`~core.delivery.destination.check_host`): a host resolving to a loopback, private
or metadata address is refused unless the operator's fetch allowlist allows it; a host
that does not resolve now is accepted (every fetch checks again, and every connection is
checked when it is made).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import News
from core.delivery.destination import check_host
from core.errors import Conflict, DestinationNotAllowed, FetchError, ValidationError
from core.fetch import GuardPolicy, Resolver

#: Port of each feed URL scheme when the URL names none.
DEFAULT_PORTS = {"http": 80, "https": 443}


def check_feed_urls(
    policy: GuardPolicy, urls: Iterable[str], resolver: Resolver | None = None
) -> None:
    """Raise :class:`ValidationError` naming the first feed URL the policy refuses."""
    for index, url in enumerate(urls):
        field = f"searchQuery.sources.{index}.url"
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            continue  # the search query's own validation names what is wrong
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValidationError("invalid port", field=field) from None
        try:
            check_host(policy, parts.hostname, port, resolver)
        except DestinationNotAllowed as exc:
            raise ValidationError(str(exc), field=field) from None
        except FetchError:
            pass  # unresolvable now: checked again at every fetch


def refuse_taken_name(session: Session, organization_id: str, name: str) -> None:
    """Raise :class:`Conflict` if the organization already has a search called ``name``."""
    taken = session.scalar(
        select(News.id).where(News.organizationId == organization_id, News.name == name.strip())
    )
    if taken is not None:
        raise Conflict(f"the organization already has a search named {name.strip()!r}", "name")
