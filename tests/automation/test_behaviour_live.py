"""Behaviour settings end to end: the product's workers against the Cloud API simulator, in one process.

What is checked is what reaches Meta (the simulator's request log) and what the customer sees.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from layanify.simulator import Simulator
from tests.conftest import Tenant
from tests.sending.conftest import eventually

BUDI = "6281234567890"
GREETING = {"type": "text", "text": "Halo! Terima kasih sudah menghubungi Toko Budi."}


def graph_calls(simulator: Simulator) -> list[dict[str, Any]]:
    """Accepted POSTs to /{phone_number_id}/messages, oldest first: sends, read marks and typing."""
    return [
        r
        for r in simulator.requests
        if r["method"] == "POST" and r["path"].endswith("/messages") and r["status"] == 200
    ]


def read_calls(simulator: Simulator) -> list[dict[str, Any]]:
    return [
        r for r in graph_calls(simulator) if isinstance(r["body"], dict) and r["body"].get("status") == "read"
    ]


async def configure(live: httpx.AsyncClient, tenant: Tenant, data: dict[str, Any]) -> None:
    response = await live.put(f"/api/v1/numbers/{tenant.number_id}/settings", json=data)
    assert response.status_code == 200, response.text


async def conversation_of(live: httpx.AsyncClient) -> dict[str, Any]:
    async def first() -> Any:
        data = (await live.get("/api/v1/conversations")).json()["data"]
        return data[0] if data else None

    found: dict[str, Any] = await eventually(first)
    return found


async def messages_of(live: httpx.AsyncClient, conversation_id: int) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await live.get(f"/api/v1/conversations/{conversation_id}/messages")).json()[
        "data"
    ]
    return data


async def test_the_customer_sees_typing_then_the_delayed_greeting(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    await configure(
        live,
        tenant,
        {
            "auto_reply": {"enabled": True, "greeting": {"enabled": True, "reply": GREETING}},
            "typing_indicator": True,
            "reply_delay_seconds": 3,
        },
    )
    written = time.time()
    inbound_wamid = await simulator.customer_sends(BUDI, {"type": "text", "text": "Halo kak"})
    conversation = await conversation_of(live)

    async def greeted() -> Any:
        found = [m for m in await messages_of(live, conversation["id"]) if m["is_automated"]]
        return found if found and found[0]["status"] in ("delivered", "read") else None

    [reply] = await eventually(greeted, within=15)
    assert reply["content"]["text"] == GREETING["text"]
    calls = graph_calls(simulator)
    typing = [c for c in calls if c["body"].get("typing_indicator") == {"type": "text"}]
    sends = [c for c in calls if c["body"].get("type") == "text"]
    assert len(typing) == 1
    assert len(sends) == 1
    assert typing[0]["body"]["message_id"] == inbound_wamid
    # The indicator came first, and the reply waited the configured delay (within the 25 s indicator).
    assert typing[0]["time"] < sends[0]["time"]
    assert sends[0]["time"] - written >= 2.95  # the configured delay, counted from the customer's message
    assert sends[0]["time"] - typing[0]["time"] <= 25  # within the indicator's limit
    # The typing call marks the customer's message read, so it is read here too.
    inbound = [m for m in await messages_of(live, conversation["id"]) if m["direction"] == "inbound"]
    assert await eventually(lambda: _status(live, inbound[0]["id"], "read")), (
        "the message the indicator named is read"
    )


async def _status(live: httpx.AsyncClient, message_id: int, wanted: str) -> bool:
    return bool((await live.get(f"/api/v1/messages/{message_id}")).json()["status"] == wanted)


async def test_opening_a_conversation_marks_every_message_read_with_one_call(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    await configure(live, tenant, {"read_receipts": "on_open"})
    wamids = [await simulator.customer_sends(BUDI, {"type": "text", "text": f"pesan {i}"}) for i in range(3)]

    async def all_arrived() -> Any:
        conversation = await conversation_of(live)
        messages = await messages_of(live, conversation["id"])
        return conversation if len(messages) == 3 else None

    conversation = await eventually(all_arrived)
    assert read_calls(simulator) == [], "nothing is marked read before an agent opens the conversation"
    opened = await live.post(f"/api/v1/conversations/{conversation['id']}/read")
    assert opened.json()["read_receipt_queued"] is True

    async def all_read() -> Any:
        messages = await messages_of(live, conversation["id"])
        return messages if all(m["status"] == "read" for m in messages) else None

    await eventually(all_read)
    calls = read_calls(simulator)
    assert len(calls) == 1
    assert calls[0]["body"]["message_id"] == wamids[-1]
    assert "typing_indicator" not in calls[0]["body"]
    thread = simulator.messaging.conversation(BUDI)  # what the customer's phone shows: blue ticks
    assert [m["read_by_business"] for m in thread["messages"] if m["direction"] == "in"] == [True] * 3


async def test_an_agent_answering_during_the_delay_means_the_customer_gets_only_the_agent(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    await configure(
        live,
        tenant,
        {
            "auto_reply": {"enabled": True, "greeting": {"enabled": True, "reply": GREETING}},
            "reply_delay_seconds": 2,
        },
    )
    await simulator.customer_sends(BUDI, {"type": "text", "text": "Halo"})
    conversation = await conversation_of(live)

    async def greeting_queued() -> Any:
        return [m for m in await messages_of(live, conversation["id"]) if m["is_automated"]]

    [greeting] = await eventually(greeting_queued)
    answer = await live.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"content": {"type": "text", "text": "Halo Budi, saya Rina."}},
    )
    assert answer.status_code == 202
    await eventually(lambda: _status(live, answer.json()["id"], "read"))
    await asyncio.sleep(2.5)  # past the greeting's delay
    sent = [m["body"]["text"]["body"] for m in simulator.sent_messages]
    assert sent == ["Halo Budi, saya Rina."]
    assert (await live.get(f"/api/v1/messages/{greeting['id']}")).json()["status"] == "cancelled"
