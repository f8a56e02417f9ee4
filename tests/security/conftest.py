"""Helpers of the security suite: apps with edge settings, and running Hypothesis beside the event loop.

Hypothesis drives plain functions, while the app and the database live on the session's event loop.
`beside_loop` runs a Hypothesis test in a worker thread and lets each example run its coroutines on
the loop (which is free: the test awaits the thread), so every example uses the same app, engine and
fixtures as the rest of the suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from layanify.app import create_app
from layanify.config import Settings
from layanify.whatsapp.client import GraphClient
from tests.conftest import make_settings

T = TypeVar("T")

hypothesis_settings.register_profile(
    "layanify-security",
    database=None,  # no .hypothesis/ directory in the work tree; every run explores afresh
    deadline=None,  # database round trips vary, on PostgreSQL especially
    print_blob=True,  # a failure prints the line that replays it exactly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = hypothesis_settings.get_profile("layanify-security")

# What the suite did, printed at the end of the run (the figures docs/security.md quotes).
COUNTS: dict[str, int] = {}


def count(key: str, n: int = 1) -> None:
    """Add to one of the suite's printed counters."""
    COUNTS[key] = COUNTS.get(key, 0) + n


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fuzzing figures."""
    if COUNTS:
        terminalreporter.write_sep("-", "security fuzzing")
        for key, value in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{key}: {value}")


class OnLoop:
    """Run coroutines on the test's event loop from the Hypothesis thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=120)


@pytest.fixture
async def on_loop() -> OnLoop:
    """Run a coroutine on this test's loop from another thread and wait for its result."""
    return OnLoop(asyncio.get_running_loop())


async def beside_loop(hypothesis_test: Callable[[], None]) -> None:
    """Run a Hypothesis test in a thread while this loop serves the coroutines its examples submit."""
    await asyncio.to_thread(hypothesis_test)


def offline_graph() -> GraphClient:
    """A Graph client that never leaves the process: every call is answered 'token invalid'."""

    def answer(_: httpx.Request) -> httpx.Response:
        error = {"message": "offline in tests", "type": "OAuthException", "code": 190}
        return httpx.Response(401, json={"error": error})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return GraphClient(base_url="https://graph.facebook.com", version="v23.0", http=http)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app with its lifespan running, talking to no real Graph API."""
    graph = offline_graph()
    application = create_app(settings, migrate=False, graph_client=graph)
    async with LifespanManager(application):
        yield application
    await graph.aclose()


def client_for(application: FastAPI, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    """An in-process client whose requests come from `peer`."""
    transport = httpx.ASGITransport(app=application, client=(peer, 51000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def edge_settings(database_url: str) -> Callable[..., Settings]:
    """Settings of the app under test with some edge options changed."""

    def build(**overrides: Any) -> Settings:
        return make_settings(database_url, **overrides)

    return build
