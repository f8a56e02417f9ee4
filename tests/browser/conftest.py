"""Browser journeys: Debian's headless Chromium, driven by Playwright, against the real processes.

`layanify serve` and `layanify simulator` start once for the package (the expensive part) and share
the test database: every test arranges its own workspace (`tenant`), customers and conversations,
and gets fresh browser contexts logged in through the login form.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright, expect

from layanify.whatsapp.signature import sign
from tests import factories
from tests.conftest import APP_SECRET, Tenant
from tests.e2e.processes import free_port, server, simulator

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TOKEN = "EAAG-test-token-" + factories.FIXTURE_PHONE_NUMBER_ID  # what the tenant factory stores
TIMEOUT_MS = 10_000  # any single browser step; a journey is a handful of them

DESKTOP: ViewportSize = {"width": 1366, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Stack:
    """The running product and simulator."""

    url: str
    sim_url: str


@pytest.fixture(scope="package")
async def stack(database_url: str) -> AsyncIterator[Stack]:
    """The simulator and the product as separate processes over loopback, wired to each other."""
    port = free_port()
    product_env = {
        "LAYANIFY_OUTBOX_POLL_SECONDS": "0.2",
        "LAYANIFY_OUTBOX_RETRY_BASE_SECONDS": "0.1",
        "LAYANIFY_OUTBOX_RETRY_MAX_SECONDS": "0.5",
        "LAYANIFY_CONNECTION_CHECK_SECONDS": "0",
        "LAYANIFY_PAIR_RATE": "100 per minute",
    }
    sim_env = {"LAYANIFY_SIMULATOR_STATUS_DELAYS": "0.1,0.3,0.6"}
    callback = f"http://127.0.0.1:{port}/api/webhooks/whatsapp"
    async with (
        simulator(callback, token=TOKEN, env=sim_env) as (_, sim_url),
        server(database_url, port=port, env={**product_env, "LAYANIFY_GRAPH_API_BASE_URL": sim_url}) as (
            _,
            url,
        ),
    ):
        yield Stack(url=url, sim_url=sim_url)


@pytest.fixture(scope="package")
def chromium_path() -> str:
    """Debian's Chromium, or a loud skip: Playwright must never download a browser here."""
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing; run `make browser` to install it")
    return str(CHROMIUM)


@pytest.fixture(scope="package")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """Headless Chromium, launched once for the package."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def sim(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's control API."""
    async with httpx.AsyncClient(base_url=stack.sim_url, timeout=10) as client:
        yield client


@pytest.fixture
async def api(stack: Stack, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The product's API as the tenant (bearer key)."""
    async with httpx.AsyncClient(base_url=stack.url, headers=tenant.headers, timeout=10) as client:
        yield client


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, stack: Stack) -> AsyncIterator[OpenPage]:
    """`await open_page(user, viewport=...)`: a fresh context (English) logged in through the form as
    `user` (or not logged in with None); every context is closed after the test."""
    contexts: list[BrowserContext] = []

    async def open_(user: Tenant | None, *, viewport: ViewportSize | None = None) -> Page:
        context = await browser.new_context(base_url=stack.url, locale="en-US", viewport=viewport or DESKTOP)
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        await page.goto("/login")
        if user is not None:
            await log_in(page, user.email, user.password)
            await expect(page).to_have_url(re.compile(r"/inbox"))
        return page

    yield open_
    for context in contexts:
        await context.close()


async def go_live(page: Page, path: str) -> None:
    """Open `path` and wait until its live event stream is connected: the server fixes the stream's
    position when it answers, so every later event reaches the page."""
    async with page.expect_response(lambda response: "/api/v1/events" in response.url):
        await page.goto(path)


async def log_in(page: Page, email: str, password: str) -> None:
    """Fill in and submit the login form on the current page."""
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form button[type=submit]")


Screenshot = Callable[[Page, str], Awaitable[None]]


@pytest.fixture
def screenshot(tmp_path: Path) -> Screenshot:
    """`await screenshot(page, name)`: the test's tmp path (an artifact); also docs/screenshots/<name>.png
    when LAYANIFY_UPDATE_SCREENSHOTS=1, so a plain `make test` leaves the working tree clean."""
    update_docs = os.environ.get("LAYANIFY_UPDATE_SCREENSHOTS") == "1"

    async def take(page: Page, name: str) -> None:
        png = await page.screenshot(full_page=False)
        (tmp_path / f"{name}.png").write_bytes(png)
        if update_docs:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / f"{name}.png").write_bytes(png)

    return take


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Poll until `check` returns something truthy."""
    async with asyncio.timeout(within):
        while not (value := await check()):  # noqa: ASYNC110 - the state is in another process
            await asyncio.sleep(0.1)
        return value


async def conversation_with(api: httpx.AsyncClient, wa_id: str) -> dict[str, Any]:
    """The tenant's conversation with `wa_id`, once the product has stored it."""

    async def find() -> dict[str, Any] | None:
        page = (await api.get("/api/v1/conversations", params={"limit": 100})).json()["data"]
        return next((c for c in page if c["contact"]["wa_id"] == wa_id), None)

    found: dict[str, Any] = await eventually(find)
    return found


async def customer_writes(sim: httpx.AsyncClient, wa_id: str, name: str, text: str, **extra: Any) -> None:
    """A simulated customer (added if new) sends a text to the tenant's number."""
    added = await sim.post("/_sim/customers", json={"wa_id": wa_id, "name": name, **extra})
    assert added.status_code == 201, added.text
    sent = await sim.post(f"/_sim/customers/{wa_id}/messages", json={"type": "text", "text": text})
    assert sent.status_code == 201, sent.text


async def post_webhook(stack: Stack, body: dict[str, Any]) -> None:
    """POST a webhook to the product signed with the app secret, as Meta does."""
    raw = json.dumps(body).encode()
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        response = await client.post(
            "/api/webhooks/whatsapp",
            content=raw,
            headers={"X-Hub-Signature-256": sign(APP_SECRET, raw), "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
