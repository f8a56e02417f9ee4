"""tRPC's HTTP wire format, for the seed's `/api/trpc/<router>.<procedure>` endpoints.

Inputs arrive as tRPC clients send them: a query as `GET ?input=<json>`, a mutation as a JSON body
(both possibly wrapped as `{"json": …}` by the superjson transformer). Answers are
`{"result":{"data":…}}`; errors are `{"error":{"message","code","data":{"code","httpStatus","path"}}}`
with tRPC's JSON-RPC error numbers.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from layanify.errors import LayanifyError

# tRPC's error names and their JSON-RPC numbers, by HTTP status.
_ERRORS: dict[int, tuple[str, int]] = {
    400: ("BAD_REQUEST", -32600),
    401: ("UNAUTHORIZED", -32001),
    403: ("FORBIDDEN", -32003),
    404: ("NOT_FOUND", -32004),
    405: ("METHOD_NOT_SUPPORTED", -32005),
    409: ("CONFLICT", -32009),
    413: ("PAYLOAD_TOO_LARGE", -32013),
    422: ("UNPROCESSABLE_CONTENT", -32022),
    429: ("TOO_MANY_REQUESTS", -32029),
    500: ("INTERNAL_SERVER_ERROR", -32603),
    503: ("SERVICE_UNAVAILABLE", -32603),
}


def _unwrap(value: Any) -> Any:
    """superjson wraps inputs as {"json": …, "meta"?: …}; plain clients send the input itself."""
    if isinstance(value, dict) and "json" in value and set(value) <= {"json", "meta"}:
        return value["json"]
    return value


async def read_input(request: Request) -> Any:
    """The procedure's input from `?input=` (queries) or the JSON body (mutations); None when absent."""
    raw: str | bytes | None = request.query_params.get("input")
    if raw is None and request.method != "GET":
        raw = await request.body()
    if raw is None or raw in ("", b""):
        return None
    try:
        return _unwrap(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise LayanifyError("the input is not valid JSON", status_code=400, code="parse_error") from exc


def result(data: Any) -> JSONResponse:
    """A successful tRPC answer."""
    return JSONResponse({"result": {"data": data}})


def error(path: str, status: int, message: str, **extra: Any) -> JSONResponse:
    """A tRPC error answer with the HTTP status it stands for."""
    name, number = _ERRORS.get(status, _ERRORS[500] if status >= 500 else _ERRORS[400])
    data = {"code": name, "httpStatus": status, "path": path, **extra}
    return JSONResponse({"error": {"message": message, "code": number, "data": data}}, status_code=status)


def error_from(path: str, exc: Exception) -> JSONResponse:
    """Our errors and validation errors as tRPC errors (anything else is re-raised by the caller)."""
    if isinstance(exc, ValidationError):
        issues = [
            {"path": list(e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors(include_url=False)
        ]
        return error(path, 400, "The input is not valid; see zodError-like `issues`.", issues=issues)
    if isinstance(exc, LayanifyError):
        extra = {"reason": exc.code}
        if exc.details is not None:
            extra["issues"] = exc.details  # type: ignore[assignment]
        return error(path, exc.status_code, exc.message, **extra)
    raise exc
