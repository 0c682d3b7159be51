"""Guarded outbound HTTP: the one way any part of newsmon talks to the outside.

Build one client per process (or worker) with :func:`build_client` from a
:class:`GuardPolicy`, then call :meth:`GuardedClient.fetch`. Every hop is checked at
connect time against the address policy; see ``guarded_transport`` for how the checked
IP is pinned, and ``outbound_guard`` for the check every other library's sockets pass.
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
from core.fetch.guarded_transport import Resolver, deadline_scope, system_resolver, time_left
from core.fetch.outbound_guard import GuardScope, approve, outbound_guard

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_USER_AGENT",
    "FETCH_DEADLINE_S",
    "MAX_FEED_BYTES",
    "READ_TIMEOUT_S",
    "FetchResult",
    "GuardPolicy",
    "GuardScope",
    "GuardedClient",
    "Resolver",
    "approve",
    "build_client",
    "check_destination",
    "classify",
    "deadline_scope",
    "fetch",
    "looks_like_feed",
    "outbound_guard",
    "system_resolver",
    "time_left",
]
