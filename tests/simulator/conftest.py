"""Simulator tests need no database: a simulator per test, webhooks captured by a MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from layanify.simulator import Simulator, SimulatorConfig

PNID = "106540352242922"
WABA = "102290129340398"
DISPLAY = "15550783881"
TOKEN = "token-demo"
SECRET = "sim-secret"
CALLBACK = "http://product.test/api/webhooks/whatsapp"
BUDI = "6281234567890"
SITI = "6289876543210"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _empty_database() -> None:
    """No database for the simulator."""


@dataclass
class Hooks:
    """Webhook POSTs the simulator made; `fail_next` answers 500 that many times first."""

    received: list[httpx.Request] = field(default_factory=list)
    fail_next: int = 0
    answered: list[int] = field(default_factory=list)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        """Record the request; answer 500 while failing, else 200."""
        await request.aread()
        if self.fail_next > 0:
            self.fail_next -= 1
            self.answered.append(500)
            return httpx.Response(500)
        self.received.append(request)
        self.answered.append(200)
        return httpx.Response(200)

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received (successful deliveries only)."""
        return [json.loads(r.content) for r in self.received]

    def statuses(self, wamid: str | None = None) -> list[dict[str, Any]]:
        """Every status item received, optionally for one wamid."""
        items = [
            s
            for body in self.bodies()
            for entry in body["entry"]
            for change in entry["changes"]
            for s in change["value"].get("statuses", [])
        ]
        return [s for s in items if wamid is None or s["id"] == wamid]

    def messages(self) -> list[dict[str, Any]]:
        """Every inbound message item received."""
        return [
            m
            for body in self.bodies()
            for entry in body["entry"]
            for change in entry["changes"]
            for m in change["value"].get("messages", [])
        ]


def make_config(**overrides: Any) -> SimulatorConfig:
    """A fast config for tests: zero delays, tiny retry base."""
    values: dict[str, Any] = {
        "app_secret": SECRET,
        "callback_url": CALLBACK,
        "status_delays": (0.0, 0.0, 0.0),
        "webhook_retry_base_seconds": 0.01,
        "webhook_retry_max_seconds": 0.05,
        "webhook_max_attempts": 5,
        "seed": 7,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


def seed(sim: Simulator) -> None:
    """The fixtures' number, two templates and two customers (Budi's window open)."""
    from datetime import UTC, datetime

    sim.add_number(PNID, waba_id=WABA, token=TOKEN, display_phone_number=DISPLAY)
    sim.add_template(WABA, name="hello_world", language="en_US")
    sim.add_template(WABA, name="order_update", language="id", body_params=2)
    sim.add_template(WABA, name="invoice", language="id", body_params=1, header="DOCUMENT")
    sim.add_customer(BUDI, name="Budi Santoso", last_message_at=datetime.now(UTC))
    sim.add_customer(SITI, name="Siti Rahma")


@pytest.fixture
def hooks() -> Hooks:
    """The product's webhook endpoint, as a recorder."""
    return Hooks()


@pytest.fixture
async def sim(hooks: Hooks) -> AsyncIterator[Simulator]:
    """A seeded simulator delivering webhooks to `hooks`."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(hooks.handler)) as http:
        simulator = Simulator(make_config(), http=http)
        seed(simulator)
        await simulator.start()
        yield simulator
        await simulator.stop()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP into the simulator's ASGI app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as c:
        yield c


def text_send(to: str = BUDI, body: str = "Halo Budi", **extra: Any) -> dict[str, Any]:
    """A valid text send body."""
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}, **extra}
