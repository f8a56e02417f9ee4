"""Open pages learn from the outbox itself that a message was sent (not only from Meta's webhooks)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from layanify.config import Settings
from layanify.realtime.broker import Broker
from layanify.realtime.events import MESSAGE_UPDATED
from layanify.simulator import Simulator
from tests.conftest import Tenant
from tests.sending.conftest import LateASGITransport, eventually, running_product

BUDI = "6281234567890"


async def test_the_outbox_announces_sent_with_the_simulators_webhooks_off(
    live_settings: Settings, sim: tuple[Simulator, LateASGITransport], tenant: Tenant
) -> None:
    simulator = sim[0]
    simulator.set_faults(webhook_down=True)  # Meta's status webhooks do not arrive: only the outbox can tell
    async with running_product(live_settings, sim, tenant) as (application, api):
        broker: Broker = application.state.broker
        subscription = broker.subscribe(
            tenant.workspace_id, last_event_id=await broker.latest_id(tenant.workspace_id)
        )
        queued = await api.post(
            "/api/v1/messages",
            json={
                "number_id": tenant.number_id,
                "to": BUDI,
                "content": {"type": "template", "name": "hello_world"},
            },
        )
        assert queued.status_code == 202, queued.text
        message_id = queued.json()["id"]

        async def sent_event() -> Any:
            async with asyncio.timeout(10):
                while True:
                    event = await anext(subscription)
                    if event.type == MESSAGE_UPDATED and event.data["message_id"] == message_id:
                        return event

        event = await sent_event()
        assert event.data == {
            "conversation_id": queued.json()["conversation_id"],
            "message_id": message_id,
            "status": "sent",
        }
        assert await eventually(lambda: _status(api, message_id, "sent"))
        await subscription.aclose()


async def _status(api: httpx.AsyncClient, message_id: int, wanted: str) -> bool:
    return bool((await api.get(f"/api/v1/messages/{message_id}")).json()["status"] == wanted)
