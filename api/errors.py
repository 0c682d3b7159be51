"""The one JSON error shape of the API, and the handlers that produce it.

Every 4xx and 5xx answers ``{"error": {"type", "message", "fields": [{"field", "message"}]}}``
(``fields`` empty unless input was rejected). Domain errors of :mod:`core.errors` map here
in one table; unexpected exceptions become a 500 whose message names only the request id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, compile_path

from core.errors import (
    Conflict,
    Forbidden,
    LimitReached,
    MailError,
    NewsmonError,
    NotFound,
    PermissionDenied,
    ValidationError,
)

log = logging.getLogger(__name__)

#: Error ``type`` for each HTTP status the API answers with.
ERROR_TYPES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    type: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel):
    """What every 4xx/5xx response carries."""

    error: ErrorBody


class ApiError(NewsmonError):
    """An HTTP-level refusal (401, 413, 429, 503...) raised by the API layer itself."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.type = type_ or ERROR_TYPES.get(status, "error")
        self.headers = headers or {}
        super().__init__(message)


def error_response(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "type": type_ or ERROR_TYPES.get(status, "error"),
            "message": message,
            "fields": fields or [],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


#: Responses every authenticated route documents (the schema of the error shape).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": ERROR_TYPES[status]}
    for status in (400, 401, 403, 404, 409, 413, 422, 429)
}


def _loc(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _field(error: dict[str, Any], body: object) -> dict[str, str]:
    """One pydantic error as ``{"field", "message"}``; an error may name a place inside
    its field (``ctx.inner``: the NUL check of a whole document). The tag pydantic puts in
    the location of a body chosen by its ``type`` (a channel) is not a field: left out."""
    loc = list(error["loc"])
    inner = (error.get("ctx") or {}).get("inner")
    if inner:
        loc.extend(str(inner).split("."))
    if (
        len(loc) > 2
        and loc[0] == "body"
        and isinstance(body, dict)
        and loc[1] == body.get("type")
        and loc[1] not in body
    ):
        del loc[1]
    return {"field": _loc(loc), "message": str(error["msg"]).removeprefix("Value error, ")}


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [_field(e, exc.body) for e in exc.errors()]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    return error_response(
        422,
        f"{first['field']}: {first['message']}" if first["field"] else first["message"],
        fields=fields,
    )


#: Methods a 405's ``Allow`` may list.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at the request's path, for a 405's ``Allow``.

    Starlette's own 405 lists only the methods of the first route matching the path, not
    those of its sibling routes (``GET /news`` and ``POST /news`` are two routes). The
    resource is read from the OpenAPI document; where a literal path and a template both
    match (``/invitations/accept``, ``/invitations/{invitationId}``), the literal one is
    the resource. Paths left out of the document go by the routes that match them.
    """
    path = request.scope["path"]
    fewest: tuple[int, set[str]] | None = None
    for template, operations in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            params = template.count("{")
            if fewest is None or params < fewest[0]:
                fewest = (params, set())
            if params == fewest[0]:
                fewest[1].update(method.upper() for method in operations)
    if fewest is not None:
        return [method for method in HTTP_METHODS if method in fewest[1]]
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(exc.status_code, str(exc.detail), headers=headers)


async def _newsmon(request: Request, exc: Exception) -> JSONResponse:  # noqa: PLR0911 (one per kind)
    if isinstance(exc, ApiError):
        return error_response(exc.status, str(exc), type_=exc.type, headers=exc.headers)
    if isinstance(exc, ValidationError):
        field = exc.field or ""
        return error_response(
            409 if isinstance(exc, Conflict) else 422,
            str(exc),
            fields=[{"field": field, "message": str(exc).removeprefix(f"{field}: ")}],
        )
    if isinstance(exc, NotFound):
        return error_response(404, str(exc))
    if isinstance(exc, PermissionDenied):
        return error_response(403, str(exc))
    if isinstance(exc, Forbidden):
        fields = [{"field": field, "message": reason} for field, reason in exc.fields]
        return error_response(403, str(exc), fields=fields)
    if isinstance(exc, LimitReached):
        fields = [{"field": exc.limit, "message": str(exc)}]
        return error_response(403, str(exc), type_="limit_reached", fields=fields)
    if isinstance(exc, MailError):
        return error_response(503, str(exc), type_="mail_unavailable")
    return await _unexpected(request, exc)


def internal_error(request_id: str, exc: BaseException) -> JSONResponse:
    """The 500 of an unexpected exception: its traceback logged once with the request id,
    the answer naming only the request id."""
    log.error("request %s failed: %s", request_id, type(exc).__name__, exc_info=exc)
    return error_response(500, f"internal error (request id {request_id})")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return internal_error(getattr(request.state, "request_id", ""), exc)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise into :func:`error_response`; any other
    exception is answered by :class:`api.middleware.ServerErrorMiddleware`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(NewsmonError, _newsmon)
