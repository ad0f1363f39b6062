"""Service errors and the one place that turns any error into ``application/problem+json``.

ServiceError                  base; ``code``, ``message``, HTTP ``status``
 ├── NotFoundError            404 a check, claim, corpus or key that does not exist
 ├── UnknownCorpusError       422 a request names a corpus that does not exist
 ├── ConflictError            409 the resource changed or already exists
 ├── BadRequestError          422 well-formed but unacceptable input
 ├── MalformedJsonError       422 a body that is not valid JSON / NDJSON
 ├── UnsupportedMediaError    415 a body in a format the route does not read
 ├── UnauthorizedError        401 no key, or a key that is unknown or revoked
 └── ForbiddenError           403 the key's role may not do this

Domain errors (``claims.errors.ClaimsError``, ``retrieval.errors.RetrievalError``)
map to statuses in ``DOMAIN_STATUS``; anything else is a 500 without details.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from claims.errors import ClaimsError, UpstreamError
from retrieval.errors import EmbedderMismatchError, IngestError, RetrievalError, SnapshotError

log = logging.getLogger("claimsieve")

PROBLEM_JSON = "application/problem+json"


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFoundError(ServiceError):
    status = 404
    code = "not_found"


class UnknownCorpusError(ServiceError):
    status = 422
    code = "unknown_corpus"


class ConflictError(ServiceError):
    status = 409
    code = "conflict"


class BadRequestError(ServiceError):
    status = 422
    code = "invalid_request"


class MalformedJsonError(ServiceError):
    status = 422
    code = "malformed_json"


class UnsupportedMediaError(ServiceError):
    status = 415
    code = "unsupported_media_type"


class UnauthorizedError(ServiceError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ServiceError):
    status = 403
    code = "forbidden"


DOMAIN_STATUS: dict[type[Exception], int] = {
    UpstreamError: 502,
    ClaimsError: 422,
    IngestError: 422,
    EmbedderMismatchError: 409,
    SnapshotError: 503,
    RetrievalError: 500,
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body of the API (RFC 9457), with a stable ``code``."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the API documents for ``path`` (the router names only its first match)."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(method.upper() for method in operations)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(ClaimsError)
    @app.exception_handler(RetrievalError)
    async def _domain(_: Request, exc: ClaimsError | RetrievalError) -> JSONResponse:
        status = next(s for t, s in DOMAIN_STATUS.items() if isinstance(exc, t))
        if status >= 500:
            log.error("domain error: %s", exc.message, exc_info=exc)
        return problem(status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(error["type"] == "json_invalid" for error in errors):
            return problem(422, "malformed_json", "the request body is not valid JSON", errors)
        return problem(422, "validation_error", "the request is not valid", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        codes = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            detail,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "the server failed to handle this request")
