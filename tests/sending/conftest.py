"""The product wired to an in-process Cloud API simulator: both directions over ASGI, no network.

The app runs its real in-process workers (webhook worker and outbox) against the simulator; tests act
through the API and the simulator's scripting, and wait for what a user would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp

from layanify.app import create_app
from layanify.config import Settings
from layanify.simulator import Simulator, SimulatorConfig
from layanify.whatsapp.client import GraphClient
from tests import factories
from tests.conftest import APP_SECRET, Tenant, make_settings

TOKEN = "EAAG-test-token-" + factories.FIXTURE_PHONE_NUMBER_ID  # what the tenant factory stores


class LateASGITransport(httpx.AsyncBaseTransport):
    """An ASGI transport whose app is set later (the simulator and the product call each other)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Fast and polite: statuses at once, customers read at once, no rate limits unless a test sets them."""
    return SimulatorConfig(
        app_secret=APP_SECRET,
        callback_url="http://product.test/api/webhooks/whatsapp",
        status_delays=(0.0, 0.01, 0.02),
        rate_limit_per_second=0,
        pair_rate_burst=0,
        webhook_retry_base_seconds=0.05,
        seed=7,
    )


def live_product_settings(database_url: str, **overrides: Any) -> Settings:
    """The product with its in-process workers on, fast retries, no periodic connection checks."""
    return make_settings(
        database_url,
        in_process_workers=1,
        outbox_poll_seconds=0.05,
        outbox_retry_base_seconds=0.05,
        outbox_retry_max_seconds=0.2,
        outbox_reconcile_seconds=2.0,
        pair_rate="100 per minute",
        connection_check_seconds=0,
        worker_coalesce_seconds=0.0,
        **overrides,
    )


@pytest.fixture
def live_settings(database_url: str) -> Settings:
    """The product with its in-process workers on, fast retries, no periodic connection checks."""
    return live_product_settings(database_url)


@pytest.fixture
async def sim(sim_config: SimulatorConfig) -> AsyncIterator[tuple[Simulator, LateASGITransport]]:
    """The simulator with the tenant's number, two templates and two customers."""
    to_product = LateASGITransport()
    simulator = Simulator(sim_config, http=httpx.AsyncClient(transport=to_product))
    simulator.add_number(
        factories.FIXTURE_PHONE_NUMBER_ID,
        waba_id=factories.FIXTURE_WABA_ID,
        token=TOKEN,
        display_phone_number=factories.FIXTURE_DISPLAY_NUMBER,
        verified_name="Toko Budi",
    )
    simulator.add_template(factories.FIXTURE_WABA_ID, name="hello_world", language="en_US")
    simulator.add_template(factories.FIXTURE_WABA_ID, name="order_update", language="id", body_params=2)
    simulator.add_customer("6281234567890", name="Budi Santoso")
    simulator.add_customer("6289876543210", name="Siti Rahma")
    await simulator.start()
    yield simulator, to_product
    await simulator.stop()


@asynccontextmanager
async def running_product(
    settings: Settings,
    sim: tuple[Simulator, LateASGITransport],
    tenant: Tenant,
    *,
    graph_transport: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The product with its workers, its Graph client pointed at the simulator (through
    `graph_transport(simulator_transport)` when a test wants to break the wire), and an API client."""
    simulator, to_product = sim
    to_simulator: httpx.AsyncBaseTransport = httpx.ASGITransport(app=simulator.app)
    if graph_transport is not None:
        to_simulator = graph_transport(to_simulator)
    graph = GraphClient(
        base_url="http://sim.test", version="v23.0", http=httpx.AsyncClient(transport=to_simulator)
    )
    application = create_app(settings, migrate=False, graph_client=graph)
    to_product.app = application
    try:
        async with (
            LifespanManager(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application),
                base_url="http://product.test",
                headers=tenant.headers,
            ) as client,
        ):
            yield application, client
    finally:
        await graph.aclose()


@pytest.fixture
async def live(
    live_settings: Settings, sim: tuple[Simulator, LateASGITransport], tenant: Tenant
) -> AsyncIterator[httpx.AsyncClient]:
    """An API client of the product running its workers against the simulator."""
    async with running_product(live_settings, sim, tenant) as (_, client):
        yield client


@pytest.fixture
def simulator(sim: tuple[Simulator, LateASGITransport]) -> Simulator:
    """The simulator alone."""
    return sim[0]


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (what a user refreshing the page would do)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s; last: {value!r}")
        await asyncio.sleep(0.02)
