"""The floor for webhook ingestion: a bare ASGI app that checks the signature, parses JSON, stores nothing.

It does the work any correct receiver must do before it can answer (read the body, HMAC-SHA256 it with
the app secret and compare in constant time, parse it with orjson) and nothing else: no framework, no
routing, no database. bench/webhook_ingest.py runs it under uvicorn with the same server flags as
`layanify serve` (one process, uvloop, httptools, no access log) to measure what the machine and the
HTTP stack allow, so the product's figures can be read as a ratio of it.

    .venv/bin/python -m uvicorn --app-dir bench baseline_app:app --loop uvloop --http httptools \
        --no-access-log --log-level warning --port 8001

The secret comes from WHATSAPP_APP_SECRET, as for the product.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SECRET = os.environ.get("WHATSAPP_APP_SECRET", "").encode()
_PREFIX = b"sha256="
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [*_TEXT, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """POST anything: 401 on a bad X-Hub-Signature-256, 400 on bad JSON, else 200 EVENT_RECEIVED."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    chunks = bytearray()
    more = True
    while more:
        message = await receive()
        chunks += message.get("body", b"")
        more = message.get("more_body", False)
    body = bytes(chunks)
    header = next((value for name, value in scope["headers"] if name == b"x-hub-signature-256"), b"")
    expected = _PREFIX + hmac.new(_SECRET, body, hashlib.sha256).hexdigest().encode()
    if not _SECRET or not hmac.compare_digest(expected, header.strip()):
        await _answer(send, 401, b"invalid signature")
        return
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        await _answer(send, 400, b"malformed json")
        return
    await _answer(send, 200, b"EVENT_RECEIVED")
