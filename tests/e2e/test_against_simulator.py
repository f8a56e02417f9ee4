"""The product and the Cloud API simulator as separate processes over loopback, as a user runs them.

One journey per test run (starting two processes is the expensive part): every inbound type shows in
the API, a reply reaches `read`, an undeliverable message shows why, throttling is retried, and a
revoked token disconnects the number and pauses its queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests import factories
from tests.conftest import Tenant
from tests.e2e.processes import free_port, server, simulator

pytestmark = pytest.mark.e2e

TOKEN = "EAAG-test-token-" + factories.FIXTURE_PHONE_NUMBER_ID  # what the tenant factory stores
BUDI = "6281234567890"
INBOUND: list[dict[str, Any]] = [
    {"type": "text", "text": "Halo kak"},
    {"type": "image", "caption": "foto barang"},
    {"type": "video"},
    {"type": "audio", "voice": True},
    {"type": "document", "filename": "invoice.pdf"},
    {"type": "sticker"},
    {"type": "location", "latitude": -6.2, "longitude": 106.8, "name": "Rumah"},
    {"type": "contacts"},
    {"type": "interactive", "button_reply": {"id": "yes", "title": "Ya"}},
    {"type": "interactive", "list_reply": {"id": "m", "title": "Ukuran M"}},
    {"type": "button", "payload": "STOP", "text": "Berhenti"},
]


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 20.0) -> Any:
    """Poll until `check` returns something truthy."""
    async with asyncio.timeout(within):
        while not (value := await check()):  # noqa: ASYNC110 - the state is in another process
            await asyncio.sleep(0.1)
        return value


async def test_the_product_works_against_the_simulator_over_loopback(
    database_url: str, tenant: Tenant
) -> None:
    port = free_port()
    product_env = {
        "LAYANIFY_OUTBOX_POLL_SECONDS": "0.2",
        "LAYANIFY_OUTBOX_RETRY_BASE_SECONDS": "0.1",
        "LAYANIFY_OUTBOX_RETRY_MAX_SECONDS": "0.5",
        "LAYANIFY_CONNECTION_CHECK_SECONDS": "0",
        "LAYANIFY_PAIR_RATE": "100 per minute",
    }
    sim_env = {"LAYANIFY_SIMULATOR_STATUS_DELAYS": "0.05,0.1,0.2"}
    callback = f"http://127.0.0.1:{port}/api/webhooks/whatsapp"
    async with (
        simulator(callback, token=TOKEN, env=sim_env) as (_, sim_url),
        server(database_url, port=port, env={**product_env, "LAYANIFY_GRAPH_API_BASE_URL": sim_url}) as (
            _,
            url,
        ),
        httpx.AsyncClient(base_url=url, headers=tenant.headers) as api,
        httpx.AsyncClient(base_url=sim_url) as sim,
    ):
        # Every inbound type a customer can send appears in the API.
        for spec in INBOUND:
            assert (await sim.post(f"/_sim/customers/{BUDI}/messages", json=spec)).status_code == 201

        async def all_inbound() -> list[dict[str, Any]] | None:
            conversations = (await api.get("/api/v1/conversations")).json()["data"]
            if not conversations:
                return None
            page = await api.get(f"/api/v1/conversations/{conversations[0]['id']}/messages?limit=100")
            data: list[dict[str, Any]] = page.json()["data"]
            return data if len(data) == len(INBOUND) else None

        inbound = await eventually(all_inbound)
        # Meta delivers concurrently, so arrival order is not sending order (timestamps are in seconds).
        assert sorted(m["content"]["type"] for m in inbound) == sorted(s["type"] for s in INBOUND)
        by_type = {m["content"]["type"]: m["content"] for m in inbound}
        assert by_type["text"]["text"] == "Halo kak"
        assert by_type["image"]["media"]["mime_type"].startswith("image/")
        assert by_type["image"]["caption"] == "foto barang"
        assert by_type["audio"]["media"]["voice"] is True
        assert by_type["location"]["location"]["name"] == "Rumah"
        assert by_type["button"]["button"]["payload"] == "STOP"
        conversation_id = inbound[0]["conversation_id"]

        async def message(message_id: int, *statuses: str) -> dict[str, Any]:
            async def check() -> dict[str, Any] | None:
                body: dict[str, Any] = (await api.get(f"/api/v1/messages/{message_id}")).json()
                return body if body["status"] in statuses else None

            found: dict[str, Any] = await eventually(check)
            return found

        # A reply reaches `read` (the simulated customer reads it).
        reply = await api.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"content": {"type": "text", "text": "Terima kasih, kami cek dulu ya"}},
        )
        assert reply.status_code == 202
        read = await message(reply.json()["id"], "read")
        assert [h["status"] for h in read["status_history"]] == ["sent", "delivered", "read"]

        # An undeliverable recipient: accepted by Meta, then failed with the reason.
        await sim.post(
            "/_sim/customers", json={"wa_id": "6281100000000", "name": "Mati", "undeliverable": True}
        )
        failed_id = (
            await api.post(
                "/api/v1/messages",
                json={
                    "number_id": tenant.number_id,
                    "to": "6281100000000",
                    "content": {"type": "template", "name": "hello_world"},
                },
            )
        ).json()["id"]
        failed = await message(failed_id, "failed")
        assert failed["error"]["code"] == 131026
        assert failed["error"]["action"] == "undeliverable"

        # Throttling is retried until sent.
        await sim.put("/_sim/faults", json={"throttle_next": 2})
        throttled_id = (
            await api.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": {"type": "text", "text": "Sebentar"}},
            )
        ).json()["id"]
        throttled = await message(throttled_id, "sent", "delivered", "read")
        assert throttled["attempts"] == 3

        # A revoked token disconnects the number; its queue waits instead of failing.
        await sim.post("/_sim/tokens/revoke", json={"token": TOKEN})
        paused_id = (
            await api.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": {"type": "text", "text": "Halo?"}},
            )
        ).json()["id"]

        async def disconnected() -> dict[str, Any] | None:
            number: dict[str, Any] = (await api.get(f"/api/v1/numbers/{tenant.number_id}")).json()
            return number if number["connection_state"] == "disconnected" else None

        number = await eventually(disconnected)
        assert "token" in number["connection_error"].lower()
        paused = (await api.get(f"/api/v1/messages/{paused_id}")).json()
        assert paused["status"] == "queued"
        assert paused["error"]["action"] == "reconnect"
