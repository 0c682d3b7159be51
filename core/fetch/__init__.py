"""Guarded outbound HTTP: the one way any part of newsmon talks to the outside.

Build one client per process (or worker) with :func:`build_client` from a
:class:`GuardPolicy`, then call :meth:`GuardedClient.fetch`. Every hop is checked at
connect time against the address policy; see ``guarded_transport`` for how the checked
IP is pinned.
"""

from core.fetch.address_policy import (
    CONNECT_TIMEOUT_S,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_USER_AGENT,
    FETCH_DEADLINE_S,
    MAX_FEED_BYTES,
    READ_TIMEOUT_S,
    GuardPolicy,
    check_destination,
    classify,
)
from core.fetch.client import FetchResult, GuardedClient, build_client, fetch, looks_like_feed
from core.fetch.guarded_transport import Resolver, system_resolver

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_USER_AGENT",
    "FETCH_DEADLINE_S",
    "MAX_FEED_BYTES",
    "READ_TIMEOUT_S",
    "FetchResult",
    "GuardPolicy",
    "GuardedClient",
    "Resolver",
    "build_client",
    "check_destination",
    "classify",
    "fetch",
    "looks_like_feed",
    "system_resolver",
]
