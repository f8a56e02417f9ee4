"""Real-time test harness: both brokers, a real HTTP server for the event stream, an SSE reader.

The event stream is endless, and httpx's ASGITransport waits for a response's whole body, so the
stream is read from a uvicorn server started in-process on a free loopback port. Every read is bounded
by a timeout: a missing event fails the test instead of hanging it.

RedisBroker tests use Redis database 14 at LAYANIFY_TEST_REDIS_URL (default 127.0.0.1:6379), emptied
before and after each test; when Redis is down they are skipped and the run says so loudly.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_async
import uvicorn
from fastapi import FastAPI
from redis.exceptions import RedisError

from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.realtime.broker import Broker, MemoryBroker, RedisBroker
from layanify.webhooks.tasks import WebhookWorker
from tests.conftest import WebhookPoster

REDIS_URL = os.environ.get("LAYANIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
READ_TIMEOUT = 5.0
_redis_unavailable: str | None = None

BrokerFactory = Callable[..., Broker]


@asynccontextmanager
async def redis_database() -> AsyncIterator[str]:
    """An empty Redis database for one test (the test is skipped, loudly, when Redis is down)."""
    global _redis_unavailable
    client = redis_async.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.flushdb()
    except (RedisError, OSError) as exc:
        await client.aclose()
        _redis_unavailable = f"{type(exc).__name__}: {exc}"
        pytest.skip(f"REDIS UNAVAILABLE at {REDIS_URL} ({_redis_unavailable}): RedisBroker is NOT tested")
    try:
        yield REDIS_URL
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Builds brokers of one kind (`make_broker(buffer_size=10)`); all are closed after the test."""
    made: list[Broker] = []
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_database()) if request.param == "redis" else None

        def make(**kwargs: Any) -> Broker:
            broker: Broker = RedisBroker(url, **kwargs) if url else MemoryBroker(**kwargs)
            made.append(broker)
            return broker

        yield make
        for broker in made:
            await broker.aclose()


@dataclass
class Sse:
    """One server-sent event as the browser sees it."""

    event: str
    id: str | None
    data: dict[str, Any]


class EventStream:
    """Reads server-sent events off an open streaming response, each within a timeout."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, seconds: float = READ_TIMEOUT) -> Sse:
        """The next event (comments and keep-alive pings skipped)."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(seconds):
            async for line in self._lines:
                if line == "":
                    if "data" in fields or "event" in fields:
                        return Sse(
                            fields.get("event", "message"), fields.get("id"), json.loads(fields["data"])
                        )
                    fields = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise EOFError("the event stream ended")

    async def ended(self, seconds: float = READ_TIMEOUT) -> bool:
        """True once the server has closed the stream (events still in flight are skipped)."""
        async with asyncio.timeout(seconds):
            async for _ in self._lines:
                pass
        return True


@dataclass
class LiveServer:
    """A uvicorn server over the app under test, on a loopback port of its own."""

    server: uvicorn.Server
    base_url: str

    def client(self) -> httpx.AsyncClient:
        """An HTTP client for it; reads time out rather than hang."""
        return httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(10.0))

    @asynccontextmanager
    async def events(
        self, client: httpx.AsyncClient, headers: dict[str, str], **params: str
    ) -> AsyncIterator[EventStream]:
        """`GET /api/v1/events` held open; closed (the client disconnects) when the block ends."""
        async with client.stream("GET", "/api/v1/events", headers=headers, params=params) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield EventStream(response)

    async def idle(self, seconds: float = READ_TIMEOUT) -> None:
        """Wait until no request is being answered (an open stream counts until its response ends)."""
        async with asyncio.timeout(seconds):
            while self.server.server_state.tasks:  # noqa: ASYNC110 - uvicorn's own set, no event to wait on
                await asyncio.sleep(0.02)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[LiveServer]:
    """Serve `app` (its lifespan already running) over loopback until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield LiveServer(server, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveServer]:
    """The app under test served over loopback."""
    async with serve(app) as server:
        yield server


@pytest.fixture
def deliver(
    app: FastAPI, webhook: WebhookPoster, sessionmaker: Sessionmaker, settings: Settings
) -> Callable[..., Awaitable[None]]:
    """Post signed webhooks, then process them with a worker publishing to the app's broker."""

    async def post_and_process(*bodies: dict[str, Any]) -> None:
        for body in bodies:
            response = await webhook.post(body)
            assert response.status_code == 200, response.text
        worker = WebhookWorker(sessionmaker, settings, broker=app.state.broker)
        while await worker.process_due_batch():
            pass

    return post_and_process


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the Redis broker could not be tested."""
    if _redis_unavailable:
        terminalreporter.write_sep("!", "REDIS BROKER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(f"Redis was not reachable at {REDIS_URL}: {_redis_unavailable}", red=True)
