"""Every error leaves the service as JSON with a code, a message naming the field, a request id.

Shape: `{"error": code, "message": text, "field": name | null, "request_id": id}` (plus
`errors`, one item per problem, on 422). No stack trace ever reaches a client: unexpected
exceptions are logged with their request id and answered 500 by `serving.middleware`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
_PLACES = ("path", "query", "body", "header", "cookie")


class ApiError(Exception):
    """An error answer: HTTP status, message, optionally the offending field and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})
        self.code = code or _CODES.get(status, "error")


def request_id_of(scope: Mapping[str, Any]) -> str:
    """The request id the middleware gave this request ("" outside a request)."""
    state = scope.get("state")
    return str(state.get("request_id", "")) if isinstance(state, dict) else ""


def error_body(
    status: int,
    message: str,
    request_id: str,
    *,
    field: str | None = None,
    code: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> bytes:
    """The JSON bytes of an error answer."""
    body: dict[str, Any] = {
        "error": code or _CODES.get(status, "error"),
        "message": message,
        "field": field,
        "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return orjson.dumps(body)


def error_response(
    status: int,
    message: str,
    request_id: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> Response:
    """A JSON error `Response`."""
    return Response(
        error_body(status, message, request_id, field=field, code=code, errors=errors),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def field_name(loc: Sequence[Any]) -> str:
    """`("query", "k")` → "k"; `("body", "numbers", "x")` → "numbers.x"; `("body",)` → "body"."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _PLACES:
        parts = parts[1:]
    return ".".join(parts) or "request"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        name = field_name(err.get("loc", ()))
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            name, msg = "body", "request body is not valid JSON"
        out.append({"field": name, "message": f"{name}: {msg}"})
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers for API, HTTP and validation errors."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status,
            exc.message,
            request_id_of(request.scope),
            field=exc.field,
            headers=exc.headers,
            code=exc.code,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(
            exc.status_code,
            str(exc.detail),
            request_id_of(request.scope),
            headers=getattr(exc, "headers", None),
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"field": "request", "message": "invalid request"}
        return error_response(
            422, first["message"], request_id_of(request.scope), field=first["field"], errors=errors
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
