"""The product's error type, and the handlers that answer every failed request clearly.

Three kinds of failure reach a client:
- a `LayanifyError` (or a validation error, or the framework's own 404/405): something the caller can
  act on, with its own status;
- a transient failure of something we depend on (the database busy or unreachable, a lost connection,
  a serialization conflict, Redis down): 503 with `Retry-After`, so API clients and Meta-style
  retriers know to try again; logged as a warning with the error's class and code, never its text;
- anything else, a bug: 500 with a short reference that is also in the log line, so a user can report
  it and an operator can find it. The exception's text never reaches the client (it may hold data).

Every one is answered through one renderer: JSON (`error_body`) by default; the web UI installs its
own (an HTML page, or a toast for htmx) that keeps JSON for `/api/*`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from layanify.observability import get_logger

log = get_logger(__name__)

# How long a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 2
# PostgreSQL SQLSTATEs of failures that a retry can get past: serialization failure, deadlock, too many
# connections, lock not available, query canceled (statement timeout), shutdown or restart in progress.
# Every connection exception (class 08) counts too.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "53300", "55P03", "57014", "57P01", "57P02", "57P03"})
# SQLite's primary result codes for a busy or locked database (extended codes keep them in the low byte).
SQLITE_BUSY_CODES = frozenset({5, 6})
# PostgreSQL's SQLSTATEs for a NUL in text (22021) and for `\u0000` in a jsonb value (22P05).
NUL_SQLSTATES = frozenset({"22021", "22P05"})


class LayanifyError(Exception):
    """An error the user can act on: a message, an HTTP status and a stable machine code."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code


class NotFound(LayanifyError):
    """The object does not exist in the caller's workspace (other workspaces' objects included)."""

    status_code = 404
    code = "not_found"


class Unauthorized(LayanifyError):
    """No valid credentials were presented."""

    status_code = 401
    code = "unauthorized"


class Conflict(LayanifyError):
    """The request is valid but the current state does not allow it (e.g. the window is closed)."""

    status_code = 409
    code = "conflict"


class Unprocessable(LayanifyError):
    """The request is well-formed JSON but its content cannot be used; `details` says where."""

    status_code = 422
    code = "validation_error"


class Forbidden(LayanifyError):
    """The caller is known but their role does not allow this."""

    status_code = 403
    code = "forbidden"


class Unavailable(LayanifyError):
    """Something the request needs is busy or unreachable for now: retry after `retry_after` seconds."""

    status_code = 503
    code = "unavailable"
    retry_after = RETRY_AFTER_SECONDS


class InternalError(LayanifyError):
    """A bug: the client gets this message and a reference; the log line has the same reference."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, reference: str) -> None:
        super().__init__(message)
        self.reference = reference


class NoRoute(LayanifyError):
    """Routing found nothing for the request: no such path, or not with this method."""


# Routing's and the framework's own HTTP errors, by status: our code for each.
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 411: "length_required"}

UNAVAILABLE_MESSAGE = "The service is busy or cannot reach its database right now; retry in a moment."
NUL_MESSAGE = "text may not contain NUL (\\u0000) characters"
INTERNAL_MESSAGE = "Something went wrong on our side. It has been logged; retry, or report the reference."

Renderer = Callable[[Request, LayanifyError], Awaitable[Response]]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON shape of every API error."""
    return {"error": {"code": code, "message": message, **extra}}


def error_headers(exc: LayanifyError) -> dict[str, str] | None:
    """The headers an error's answer carries: the auth scheme on 401, when to retry on 503."""
    if exc.status_code == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Unavailable):
        return {"Retry-After": str(exc.retry_after)}
    return None


def error_extra(exc: LayanifyError) -> dict[str, Any]:
    """An error's fields beyond code and message: `details` where given, `reference` for a bug."""
    extra: dict[str, Any] = {"details": exc.details} if exc.details is not None else {}
    if isinstance(exc, InternalError):
        extra["reference"] = exc.reference
    return extra


async def json_error(_: Request, exc: LayanifyError) -> Response:
    """The API's answer to an error: `error_body` with the error's status and headers."""
    return JSONResponse(
        error_body(exc.code, exc.message, **error_extra(exc)),
        status_code=exc.status_code,
        headers=error_headers(exc),
    )


def _database_code(exc: BaseException) -> str | int | None:
    """The driver's own code for a database error: a SQLSTATE (PostgreSQL) or a result code (SQLite)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(code, str):
        return code
    sqlite = getattr(orig, "sqlite_errorcode", None)
    return sqlite if isinstance(sqlite, int) else None


def is_nul_rejection(exc: BaseException) -> bool:
    """Whether the database refused a NUL character in text (PostgreSQL; SQLite stores it)."""
    return _database_code(exc) in NUL_SQLSTATES


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is one a retry can get past: the database or Redis busy, unreachable or lost."""
    if isinstance(exc, PoolTimeout | ConnectionError | redis.exceptions.ConnectionError):
        return True  # no pooled connection free in time; a connection refused, reset or lost
    if isinstance(exc, redis.exceptions.TimeoutError | StorageError):
        return True  # Redis slow; the rate limits' store (Redis) failing
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = _database_code(exc)
    if isinstance(code, str):
        return code in TRANSIENT_SQLSTATES or code.startswith("08")
    return isinstance(code, int) and code & 0xFF in SQLITE_BUSY_CODES


def outage_fields(exc: BaseException) -> dict[str, Any]:
    """What a transient failure's warning line says of it: its class, the driver's error class and code
    (never its text, which holds the statement)."""
    cause = type(getattr(exc, "orig", None) or exc.__cause__ or exc).__name__
    return {"error": type(exc).__name__, "cause": cause, "code": _database_code(exc)}


def log_failure(logger: Any, event: str, exc: BaseException, **ids: Any) -> None:
    """A background task's failed pass: one warning line when a retry will likely get past it (the
    database busy, restarting or unreachable; the task tries again by itself), else the error with its
    traceback (a bug: Sentry gets it)."""
    if is_transient(exc):
        logger.warning(event, **outage_fields(exc), **ids)
    else:
        logger.exception(event, **ids)


def _renderer(request: Request) -> Renderer:
    render: Renderer = getattr(request.app.state, "error_renderer", json_error)
    return render


async def _layanify_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LayanifyError)
    return await _renderer(request)(request, exc)


async def _transient_or_bug(request: Request, exc: Exception) -> Response:
    """A database or Redis failure: 422 for a NUL in text, 503 when a retry can help, else a bug."""
    if isinstance(exc, DBAPIError) and is_nul_rejection(exc):
        refused = LayanifyError(NUL_MESSAGE, status_code=422, code="invalid_text")
        return await _renderer(request)(request, refused)
    if not is_transient(exc):
        raise exc  # a bug: ServerErrorMiddleware answers it through _bug, and it is logged there
    log.warning("request_unavailable", method=request.method, path=request.url.path, **outage_fields(exc))
    return await _renderer(request)(request, Unavailable(UNAVAILABLE_MESSAGE))


async def _bug(request: Request, exc: Exception) -> Response:
    """Any other exception: 500 with a reference (the traceback follows in the server's log)."""
    reference = secrets.token_hex(6)
    log.error(
        "request_failed",
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
        reference=reference,
    )
    error = InternalError(INTERNAL_MESSAGE, reference=reference)
    try:
        return await _renderer(request)(request, error)
    except Exception:  # the page could not be rendered either: the JSON answer needs nothing
        log.exception("error_page_failed", reference=reference)
        return await json_error(request, error)


async def _http_error(request: Request, exc: Exception) -> Response:
    """The framework's HTTP errors (no such route, method not allowed, …) in our shape, not `{"detail"}`."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 404:
        message = f"Nothing is at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see the Allow header."
    else:
        message = str(exc.detail)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    response = await _renderer(request)(request, NoRoute(message, status_code=exc.status_code, code=code))
    response.headers.update(exc.headers or {})
    return response


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "message": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return JSONResponse(
        error_body("validation_error", "The request is not valid; see details.", details=details),
        status_code=422,
    )


def install_error_handlers(app: FastAPI, render: Renderer = json_error) -> None:
    """Answer product errors, validation errors, transient failures and bugs, each through `render`.

    Validation errors are always JSON (only the API validates request models).
    """
    app.state.error_renderer = render
    app.add_exception_handler(LayanifyError, _layanify_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for transient in (DBAPIError, PoolTimeout, ConnectionError, redis.exceptions.RedisError, StorageError):
        app.add_exception_handler(transient, _transient_or_bug)
    app.add_exception_handler(Exception, _bug)
