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

from core.errors import (
    Forbidden,
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
    for status in (400, 401, 403, 404, 413, 422, 429)
}


def _loc(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [{"field": _loc(e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    return error_response(
        422,
        f"{first['field']}: {first['message']}" if first["field"] else first["message"],
        fields=fields,
    )


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


async def _newsmon(request: Request, exc: Exception) -> JSONResponse:  # noqa: PLR0911 (one per kind)
    if isinstance(exc, ApiError):
        return error_response(exc.status, str(exc), type_=exc.type, headers=exc.headers)
    if isinstance(exc, ValidationError):
        field = exc.field or ""
        return error_response(
            422, str(exc), fields=[{"field": field, "message": str(exc).removeprefix(f"{field}: ")}]
        )
    if isinstance(exc, NotFound):
        return error_response(404, str(exc))
    if isinstance(exc, PermissionDenied):
        return error_response(403, str(exc))
    if isinstance(exc, Forbidden):
        fields = [{"field": field, "message": reason} for field, reason in exc.fields]
        return error_response(403, str(exc), fields=fields)
    if isinstance(exc, MailError):
        return error_response(503, str(exc), type_="mail_unavailable")
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "")
    log.error("request %s failed: %s", request_id, type(exc).__name__, exc_info=exc)
    return error_response(500, f"internal error (request id {request_id})")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise into :func:`error_response`."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(NewsmonError, _newsmon)
    app.add_exception_handler(Exception, _unexpected)
