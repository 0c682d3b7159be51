"""The operator page: a small server-rendered view of queues, failures and runs.

Logging in with an operator key opens a session (token in an HttpOnly, SameSite=Strict
cookie scoped to ``/ops``, ``Secure`` when the page is served over https; only its hash
is stored). Every state-changing request must come from the page itself: its ``Origin``
(or ``Referer``) must be the page's own origin, so ``Origin: null`` and other sites are
refused with 403. Every response under ``/ops`` carries :data:`SECURITY_HEADERS` (the app
factory installs them): a CSP without any script, no framing, no caching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import SessionDep, client_address, request_broker
from api.errors import ApiError
from api.routes.deliveries import commit_and_enqueue
from core.delivery.replay import failed_deliveries, replay_for_operator
from core.errors import Conflict, NotFound
from core.keys import hash_key, looks_like_key
from core.ops.display import duration, moment
from core.ops.overview import failing_channels, failing_sources, recent_runs, scheduler_lag
from core.ops.sessions import (
    OPS_SESSION_TTL,
    end_ops_session,
    ops_session_operator,
    start_ops_session,
)
from core.tenancy.api_keys import OPERATOR_KEY_PREFIX
from core.tenancy.audit import record_audit
from core.tenancy.key_checks import use_operator_key
from core.usage.months import month_of
from core.usage.report import top_usage
from workers.broker import BROKER_ERRORS
from workers.dead_letters import (
    DeadLetter,
    dead_letter_queues,
    list_dead_letters,
    replay_dead_letter,
    resolve_dead_letters,
)
from workers.queue_depths import QueueDepth, queue_depths

#: Dead letters listed per queue on the page (the API lists more).
DEAD_LETTERS_SHOWN = 20
#: Failed deliveries listed on the page, newest first (``/operator/deliveries/failed``
#: pages through all of them).
FAILED_DELIVERIES_SHOWN = 50
#: Organizations listed in the page's usage table, most API requests first
#: (``GET /operator/usage`` lists every one).
USAGE_SHOWN = 20
#: Name of the operator page's session cookie.
COOKIE = "newsmon_ops"
#: Request methods that change nothing; any other must come from the page's own origin.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Default port of each scheme, which an origin leaves out (as browsers do).
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Headers of every response under ``/ops``. The pages have no script at all and style
#: only from ``/ops/static``; ``same-origin`` referrers, because ``no-referrer`` makes
#: browsers send ``Origin: null`` on the page's own form posts.
SECURITY_HEADERS = (
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
)
_HERE = Path(__file__).resolve().parent.parent
_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"])
)
_templates.filters.update(duration=duration, moment=moment)
#: Stylesheet of the page (mounted by the app factory).
static_files = StaticFiles(directory=_HERE / "static")


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**context), status_code=status)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=10).items()}


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL as browsers write an ``Origin``
    (lower case, no default port); None for anything else (``null`` included)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{shown_port}"


def _page_origin(request: Request) -> str | None:
    """The page's own origin: ``NEWSMON_PUBLIC_URL`` when set (behind a TLS proxy the
    app sees http), else the scheme of this connection and its ``Host``."""
    public: str = request.app.state.settings.public_url
    if public:
        return _origin(public)
    return _origin(f"{request.url.scheme}://{request.headers.get('host', '')}")


def same_origin(request: Request) -> None:
    """Refuse (403) a state-changing request that does not come from the page itself:
    its ``Origin`` (or, from a browser that sends none, its ``Referer``) must be the
    page's own origin. ``null`` (sandboxed frames, data: URLs) is never the page."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent:
        raise ApiError(403, "request without Origin refused (operator page forms only)")
    if _origin(sent) is None or _origin(sent) != _page_origin(request):
        raise ApiError(
            403,
            "request from another origin refused (operator page forms only; behind a "
            "proxy, NEWSMON_PUBLIC_URL must be the address browsers use)",
        )


def _secure_cookie(request: Request) -> bool:
    public: str = request.app.state.settings.public_url
    return public.startswith("https://") if public else request.url.scheme == "https"


router = APIRouter(prefix="/ops", include_in_schema=False, dependencies=[Depends(same_origin)])


def _now(request: Request) -> Any:
    return request.app.state.clock()


@router.get("", response_class=HTMLResponse)
def ops_page(request: Request, session: SessionDep) -> Response:
    """The dashboard, or the login form without a live session."""
    now = _now(request)
    operator = ops_session_operator(session, request.cookies.get(COOKIE, ""), now=now)
    if operator is None:
        return _render("ops_login.html")
    queues: list[QueueDepth] = []
    letters: list[DeadLetter] = []
    queue_error = None
    try:
        broker = request_broker(request)
        queues = queue_depths(broker)
        for queue in dead_letter_queues(broker):
            letters.extend(list_dead_letters(broker, queue, limit=DEAD_LETTERS_SHOWN))
    except BROKER_ERRORS:
        queue_error = "The queue (NEWSMON_BROKER_URL) is unreachable."
    letters = resolve_dead_letters(session, letters)
    request.app.state.usage_meter.flush(request.app.state.engine, now)  # this process's own
    return _render(
        "ops.html",
        operator=operator.name,
        now=moment(now),
        notice=request.query_params.get("notice"),
        queues=queues,
        queue_error=queue_error,
        dead_letters=letters,
        lag=scheduler_lag(session, now=now),
        sources=failing_sources(session),
        channels=failing_channels(session),
        failed_deliveries=failed_deliveries(session, limit=FAILED_DELIVERIES_SHOWN),
        runs=recent_runs(session),
        usage_month=month_of(now),
        usage=top_usage(session, month_of(now), limit=USAGE_SHOWN),
    )


@router.post("/login")
async def ops_login(request: Request, session: SessionDep) -> Response:
    key = (await _form(request)).get("key", "").strip()
    now = _now(request)
    used = None
    if looks_like_key(key, prefixes=(OPERATOR_KEY_PREFIX,)):
        used = use_operator_key(session.connection(), hash_key(key), now=now)
    if used is None:
        return _render("ops_login.html", status=401, error="That is not a valid operator key.")
    token = start_ops_session(session, used.key_id, now=now)
    record_audit(
        session,
        None,
        actor_type="operator",
        actor_id=used.key_id,
        action="ops.login",
        target_type="operatorKey",
        target_id=used.key_id,
        request_id=request.state.request_id,
        ip_address=client_address(request),
        details=None,
    )
    response = RedirectResponse("/ops", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(OPS_SESSION_TTL.total_seconds()),
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=_secure_cookie(request),
    )
    return response


@router.post("/logout")
def ops_logout(request: Request, session: SessionDep) -> Response:
    end_ops_session(session, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/ops", status_code=303)
    response.delete_cookie(
        COOKIE, path="/ops", httponly=True, samesite="strict", secure=_secure_cookie(request)
    )
    return response


@router.post("/dead-letters/replay")
async def ops_replay_dead_letter(request: Request, session: SessionDep) -> Response:
    """The page's Replay button: enqueue a dead letter again, then back to the page."""
    operator = ops_session_operator(session, request.cookies.get(COOKIE, ""), now=_now(request))
    if operator is None:
        return RedirectResponse("/ops", status_code=303)
    form = await _form(request)
    queue, message_id = form.get("queue", ""), form.get("message_id", "")
    broker = request_broker(request)
    if queue not in dead_letter_queues(broker):
        raise ApiError(422, "unknown queue")
    try:
        replayed = replay_dead_letter(broker, queue, message_id)
    except BROKER_ERRORS:
        raise ApiError(503, "the queue is unreachable") from None
    if replayed:
        record_audit(
            session,
            None,
            actor_type="operator",
            actor_id=operator.id,
            action="deadletter.replay",
            target_type="message",
            target_id=message_id,
            request_id=request.state.request_id,
            ip_address=client_address(request),
            details={"queue": queue},
        )
    notice = f"Replayed {message_id}." if replayed else f"{message_id} is no longer a dead letter."
    return RedirectResponse(f"/ops?{urlencode({'notice': notice})}", status_code=303)


@router.post("/deliveries/replay")
async def ops_replay_delivery(request: Request, session: SessionDep) -> Response:
    """The page's Replay button of a failed delivery: back to pending with a fresh
    attempt budget, audited in its organization's log, enqueued after the commit."""
    now = _now(request)
    operator = ops_session_operator(session, request.cookies.get(COOKIE, ""), now=now)
    if operator is None:
        return RedirectResponse("/ops", status_code=303)
    delivery_id = (await _form(request)).get("delivery_id", "")
    try:
        replay_for_operator(
            session,
            delivery_id,
            operator_id=operator.id,
            request_id=request.state.request_id,
            ip_address=client_address(request),
            now=now,
        )
    except (NotFound, Conflict) as exc:
        notice = f"Not replayed: {exc}."
    else:
        enqueued = commit_and_enqueue(request, session, delivery_id)
        notice = f"Replayed delivery {delivery_id}." + (
            "" if enqueued else " The queue is unreachable: the sweeper will send it."
        )
    return RedirectResponse(f"/ops?{urlencode({'notice': notice})}", status_code=303)
