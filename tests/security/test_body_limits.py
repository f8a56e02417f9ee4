"""Oversized API bodies and uploads are refused with 413, before they are read when they say their size."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import func, select

from layanify.config import API_MAX_BODY_BYTES
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.formats import MAX_UPLOAD_BYTES
from layanify.messaging.models import Message
from tests.conftest import Tenant


async def messages_stored(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


def padded_send(tenant: Tenant, size: int) -> bytes:
    """A send request whose text pads the body to about `size` bytes."""
    body = {"number_id": tenant.number_id, "to": "6281234567890", "type": "text", "text": ""}
    bare = len(orjson.dumps(body))
    body["text"] = "x" * max(size - bare, 0)
    return orjson.dumps(body)


async def test_an_api_body_over_the_limit_is_refused_in_the_api_error_shape(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    content = padded_send(tenant, API_MAX_BODY_BYTES + 1)
    headers = tenant.headers | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/messages", content=content, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await messages_stored(sessionmaker) == 0


async def test_a_streamed_api_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    content = padded_send(tenant, 3 * API_MAX_BODY_BYTES)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length
        for start in range(0, len(content), 64 * 1024):
            yield content[start : start + 64 * 1024]

    headers = tenant.headers | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/messages", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await messages_stored(sessionmaker) == 0


async def test_the_seed_trpc_endpoints_have_the_same_limit(client: httpx.AsyncClient, tenant: Tenant) -> None:
    content = b'{"displayName":"' + b"x" * API_MAX_BODY_BYTES + b'"}'
    response = await client.put(
        "/api/trpc/whatsapp.updateNumber",
        content=content,
        headers=tenant.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_a_body_within_the_limit_goes_through(client: httpx.AsyncClient, tenant: Tenant) -> None:
    content = padded_send(tenant, API_MAX_BODY_BYTES - 1024)
    headers = tenant.headers | {"Content-Type": "application/json"}
    response = await client.post("/api/v1/messages", content=content, headers=headers)
    assert response.status_code != 413  # refused for its content (text too long), not its size
    assert response.status_code < 500


async def raw_call(
    app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes, int]:
    """Call the app directly; returns the status, the answer and how many body bytes the app read."""
    read = 0
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not chunks:
            return {"type": "http.disconnect"}
        chunk = chunks.pop(0)
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 51000),
        "server": ("testserver", 80),
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await app(scope, receive, send)
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], answer, read


async def test_an_upload_over_the_media_limit_is_refused_without_reading_it(
    app: FastAPI, tenant: Tenant
) -> None:
    size = MAX_UPLOAD_BYTES + 1024 * 1024
    headers = tenant.headers | {
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(size),
    }
    # The body is never produced: were it read, the app would see a disconnect instead of its bytes.
    status, answer, read = await raw_call(app, "POST", "/api/v1/media", headers, b"")
    assert status == 413, answer
    assert read == 0


async def test_an_upload_larger_than_the_api_limit_is_left_to_the_media_limit(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    files = {"file": ("photo.jpg", b"\xff\xd8\xff" + b"\0" * (2 * API_MAX_BODY_BYTES), "image/jpeg")}
    # A number that does not exist: the upload is read and refused for that, never sent to Meta.
    response = await client.post(
        "/api/v1/media", files=files, data={"number_id": "999999"}, headers=tenant.headers
    )
    assert response.status_code == 404, response.text


async def test_an_api_body_declared_over_the_limit_is_refused_before_it_is_read(
    app: FastAPI, tenant: Tenant
) -> None:
    headers = tenant.headers | {
        "Content-Type": "application/json",
        "Content-Length": str(API_MAX_BODY_BYTES + 1),
    }
    status, answer, read = await raw_call(app, "POST", "/api/v1/messages", headers, b"")
    assert status == 413
    assert orjson.loads(answer)["error"]["code"] == "payload_too_large"
    assert read == 0
