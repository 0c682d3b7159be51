"""The operator page: a small server-rendered view of queues, failures and runs.

Logging in with an operator key opens a session (token in an HttpOnly, SameSite=Strict
cookie scoped to ``/ops``; only its hash is stored). Form posts must come from this
page: a cross-site ``Origin`` is refused, and the cookie is never sent cross-site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import BROKER_ERRORS, SessionDep, request_broker
from api.errors import ApiError
from core.keys import hash_key, looks_like_key
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
from workers.dead_letters import (
    DeadLetter,
    dead_letter_queues,
    list_dead_letters,
    replay_dead_letter,
)
from workers.queue_depths import QueueDepth, queue_depths

router = APIRouter(prefix="/ops", include_in_schema=False)

#: Dead letters listed per queue on the page (the API lists more).
DEAD_LETTERS_SHOWN = 20
#: Name of the operator page's session cookie.
COOKIE = "newsmon_ops"
_HERE = Path(__file__).resolve().parent.parent
_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"])
)
#: Stylesheet of the page (mounted by the app factory).
static_files = StaticFiles(directory=_HERE / "static")


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**context), status_code=status)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=10).items()}


def _same_origin(request: Request) -> None:
    """Refuse form posts from another site (the cookie is SameSite=Strict as well)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(403, "cross-site form post refused")


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
    return _render(
        "ops.html",
        operator=operator.name,
        now=now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        notice=request.query_params.get("notice"),
        queues=queues,
        queue_error=queue_error,
        dead_letters=letters,
        lag=scheduler_lag(session, now=now),
        sources=failing_sources(session),
        channels=failing_channels(session),
        runs=recent_runs(session),
    )


@router.post("/login")
async def ops_login(request: Request, session: SessionDep) -> Response:
    _same_origin(request)
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
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def ops_logout(request: Request, session: SessionDep) -> Response:
    _same_origin(request)
    end_ops_session(session, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/ops", status_code=303)
    response.delete_cookie(COOKIE, path="/ops")
    return response


@router.post("/dead-letters/replay")
async def ops_replay_dead_letter(request: Request, session: SessionDep) -> Response:
    """The page's Replay button: enqueue a dead letter again, then back to the page."""
    _same_origin(request)
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
            details={"queue": queue},
        )
    notice = f"Replayed {message_id}." if replayed else f"{message_id} is no longer a dead letter."
    return RedirectResponse(f"/ops?{urlencode({'notice': notice})}", status_code=303)
