"""The product's error type and the handlers that turn it into clear JSON answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON shape of every API error."""
    return {"error": {"code": code, "message": message, **extra}}


async def _layanify_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LayanifyError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    extra = {"details": exc.details} if exc.details is not None else {}
    return JSONResponse(
        error_body(exc.code, exc.message, **extra), status_code=exc.status_code, headers=headers
    )


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


def install_error_handlers(app: FastAPI) -> None:
    """Answer product errors and validation errors with the same JSON shape."""
    app.add_exception_handler(LayanifyError, _layanify_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
