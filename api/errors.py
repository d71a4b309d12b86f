"""The one error shape every 4xx/5xx uses, and the handlers that produce it.

``{"error": {"code": ..., "message": ..., "details": [...]}, "request_id": ...}``: clients switch on
``code`` (stable, snake_case); ``message`` is for people; ``details`` locates field errors. A
response never carries a stack trace or echoes the submitted values.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

DEFAULT_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    500: "internal_error", 503: "unavailable",
}


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(default_factory=list,
                                 description="Where: e.g. [\"body\", \"text\"].")
    msg: str
    type: str
    allowed: list[str] | None = Field(None, description="Accepted values, where a set is fixed.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code, e.g. validation_error.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str


class ApiError(Exception):
    """Raise from a route or dependency to answer with the documented error shape."""

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code or DEFAULT_CODES.get(status_code, "error")
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})


def request_id_of(scope_or_request: Request | Mapping[str, Any]) -> str:
    scope = scope_or_request.scope if isinstance(scope_or_request, Request) else scope_or_request
    state = scope.get("state") or {}
    return str(state.get("request_id") or uuid.uuid4().hex)


def error_payload(code: str, message: str, request_id: str,
                  details: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)},
            "request_id": request_id}


def error_response(
    status_code: int,
    message: str,
    request_id: str,
    code: str | None = None,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    code = code or DEFAULT_CODES.get(status_code, "error")
    # Set here too: a 500 is sent by Starlette's outermost layer, around the request-id middleware.
    return JSONResponse(error_payload(code, message, request_id, details), status_code=status_code,
                        headers={**(headers or {}), "X-Request-ID": request_id})


def _clean_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Keep where and why; drop ``input``/``ctx``, which echo (possibly personal) submitted data."""
    out = []
    for e in errors:
        out.append({"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                    "msg": str(e.get("msg", "invalid value")),
                    "type": str(e.get("type", "value_error"))})
    return out


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.message, request_id_of(request), exc.code,
                          exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    rid = request_id_of(request)
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        e = bad_json[0]
        reason = (e.get("ctx") or {}).get("error", "invalid JSON")
        pos = e["loc"][-1] if e.get("loc") else "?"
        return error_response(400, f"request body is not valid JSON: {reason} (at character {pos})",
                              rid, "invalid_json")
    return error_response(422, "the request does not match the schema; see details", rid,
                          "validation_error", _clean_validation_errors(errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = DEFAULT_CODES.get(exc.status_code, "error")
    message = str(exc.detail) if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 400 and message == "There was an error parsing the body":
        code, message = "invalid_json", "request body is not valid JSON"
    elif exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}"
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by several
        # routes (GET and POST /v1/kb/articles) must list them all.
        allowed = _allowed_methods(request) or [headers.get("Allow", "GET")]
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
    return error_response(exc.status_code, message, request_id_of(request), code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Methods the OpenAPI schema documents for the request's path."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id_of(request)
    log.error("request %s failed: %s", rid, type(exc).__name__, exc_info=exc)
    return error_response(500, "internal error; quote the request_id when reporting it", rid)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)


_DESCRIPTIONS = {
    400: "Invalid JSON or invalid UTF-8 in the body.",
    401: "Missing or unknown API key (`Authorization: Bearer <key>`).",
    403: "The key's role may not call this endpoint.",
    404: "Not found.",
    409: "Conflict with the current state.",
    413: "Request body larger than the limit (1 MiB by default).",
    415: "The body is not `application/json`.",
    422: "The body or parameters do not match the schema (see `details`).",
    429: "Too many requests queued; retry after the `Retry-After` seconds.",
    503: "The model is not loaded (yet).",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``codes``, all with the :class:`ErrorResponse` schema."""
    out: dict[int | str, dict[str, Any]] = {}
    for c in codes:
        entry: dict[str, Any] = {"model": ErrorResponse,
                                 "description": _DESCRIPTIONS.get(c, "Error.")}
        if c == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                     "description": "Always `Bearer`."}}
        if c in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "string"},
                                                "description": "Seconds to wait."}}
        out[c] = entry
    return out
