"""The floor for the simulator's send endpoint: a bare ASGI app answering a send's JSON without any work.

It reads the body and answers a fixed Cloud API send response (no routing, no validation, no state), so
bench/simulator_throughput.py can read the simulator's figures as a ratio of what the machine and the
HTTP stack allow. It also serves as the webhook sink (it answers 200 to any POST).

    .venv/bin/python -m uvicorn --app-dir bench simulator_baseline_app:app --loop uvloop --http httptools \
        --no-access-log --log-level warning --port 8002
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY = (
    b'{"messaging_product":"whatsapp","contacts":[{"input":"6281200000001","wa_id":"6281200000001"}],'
    b'"messages":[{"id":"wamid.HBgNNjI4MTIwMDAwMDAwMRUCABEYEjAwMDAwMDAwMDAwMDAwMDAwMQA="}]}'
)
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer every HTTP request with the fixed send response, after reading its body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
