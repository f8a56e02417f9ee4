"""What the API refuses to take in: bodies over a size limit, and text the database cannot store.

Size: a body on `/api/*` (the REST API and the seed's tRPC endpoints) declared larger than the limit is
refused with 413 before a byte of it is read; one that turns out larger (chunked, or a wrong
Content-Length) is refused as soon as the bytes read pass the limit. Paths with their own, larger
limit (media uploads) are listed in `limits`. Meta's webhook has its own limit (`webhooks/routes.py`)
and never reaches this middleware: `LayanifyApp` answers it first.

NUL characters: PostgreSQL stores them in no text column, and refuses a query that compares one. A
NUL anywhere in a request (a query parameter, a JSON string, a form field) used to surface as a 500
from the database driver; it is answered 422 instead, on every route, without a check on the way in
(`errors.is_nul_rejection`, answered by the database-error handler in `errors`).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from layanify.errors import error_body

API_PREFIX = "/api/"


class BodyTooLarge(HTTPException):
    """The request body passed the limit while it was being read.

    An HTTPException so that FastAPI's body parsing lets it through unchanged instead of answering 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request bodies here are limited to {limit} bytes")


def _too_large_body(limit: int) -> bytes:
    return orjson.dumps(error_body("payload_too_large", f"request bodies here are limited to {limit} bytes"))


async def _body_too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return JSONResponse(error_body("payload_too_large", str(exc.detail)), status_code=413)


class ApiBodyLimit:
    """ASGI middleware: at most `limit` bytes of body on /api/*, or `limits[path]` for listed paths."""

    def __init__(self, app: ASGIApp, *, limit: int, limits: Mapping[str, int] | None = None) -> None:
        self._app = app
        self._limit = limit
        self._limits = dict(limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIX):
            await self._app(scope, receive, send)
            return
        limit = self._limits.get(path, self._limit)
        declared = next((value for key, value in scope["headers"] if key == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            body = _too_large_body(limit)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self._app(scope, receive_limited, send)


def install_input_limits(app: FastAPI, *, limit: int, limits: Mapping[str, int] | None = None) -> None:
    """Limit the API's request bodies (413); NUL characters are answered by `errors` (422)."""
    app.add_middleware(ApiBodyLimit, limit=limit, limits=limits)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
