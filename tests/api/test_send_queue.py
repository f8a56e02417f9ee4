"""Queueing a message through the API: what is accepted (202, queued) and what is refused, and why."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import func, select

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.numbers.models import WhatsAppNumber
from tests import factories
from tests.conftest import Tenant, WebhookPoster

CUSTOMER = "6281234567890"


async def open_window(
    webhook: WebhookPoster, wamid: str = "wamid.window-opener", wa_id: str = CUSTOMER
) -> None:
    """The customer writes now, which opens the 24-hour window."""
    await webhook.deliver(
        factories.text_message(wamid, "Halo, mau tanya", wa_id=wa_id, timestamp=int(time.time()))
    )


async def count_messages(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


async def test_a_text_inside_the_window_is_queued_with_202(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await open_window(webhook)
    response = await client.post(
        "/api/v1/messages",
        json={
            "number_id": tenant.number_id,
            "to": "+62 812-3456-7890",
            "content": {"type": "text", "text": "Siap!"},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["direction"] == "outbound"
    assert body["recipient"] == CUSTOMER
    assert body["content"]["text"] == "Siap!"
    shown = await client.get(f"/api/v1/messages/{body['id']}", headers=tenant.headers)
    assert shown.json()["status"] == "queued"
    conversation = await client.get(
        f"/api/v1/conversations/{body['conversation_id']}", headers=tenant.headers
    )
    assert conversation.json()["last_message_preview"] == "Siap!"


async def test_a_local_indonesian_number_is_understood(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await open_window(webhook)
    response = await client.post(
        "/api/v1/messages",
        json={
            "number_id": tenant.number_id,
            "to": "0812-3456-7890",
            "content": {"type": "text", "text": "Ok"},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["recipient"] == CUSTOMER


async def test_free_form_outside_the_window_is_refused_before_anything_is_sent(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    response = await client.post(
        "/api/v1/messages",
        json={"number_id": tenant.number_id, "to": CUSTOMER, "content": {"type": "text", "text": "Promo!"}},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "template_required"
    assert "template" in error["message"]
    assert await count_messages(sessionmaker) == 0


async def test_a_template_may_be_sent_outside_the_window(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/api/v1/messages",
        json={
            "number_id": tenant.number_id,
            "to": CUSTOMER,
            "content": {
                "type": "template",
                "name": "order_update",
                "language": "id",
                "template_params": ["A1", "B"],
            },
        },
        headers=tenant.headers,
    )
    assert response.status_code == 202, response.text
    assert response.json()["content"]["name"] == "order_update"


async def test_a_window_that_closed_refuses_free_form(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver(
        factories.text_message("wamid.old", "Halo", wa_id=CUSTOMER, timestamp=int(time.time()) - 25 * 3600)
    )
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    response = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"content": {"type": "text", "text": "Maaf terlambat"}},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "template_required"


async def test_invalid_content_says_which_field(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await open_window(webhook)
    before = await count_messages(sessionmaker)
    for content in (
        {"type": "text", "text": ""},
        {"type": "text", "text": "x" * 4097},
        {"type": "image"},
        {"type": "hologram"},
        {
            "type": "interactive",
            "body": "Pilih",
            "buttons": [{"id": str(i), "title": f"B{i}"} for i in range(4)],
        },
    ):
        response = await client.post(
            "/api/v1/messages",
            json={"number_id": tenant.number_id, "to": CUSTOMER, "content": content},
            headers=tenant.headers,
        )
        assert response.status_code == 422, (content, response.text)
        error = response.json()["error"]
        assert error["details"], error
        assert error["details"][0]["loc"][0] == "content"
    assert await count_messages(sessionmaker) == before


async def test_an_impossible_recipient_is_a_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for to in ("hello", "+62 1", "+999 123"):
        response = await client.post(
            "/api/v1/messages",
            json={"number_id": tenant.number_id, "to": to, "content": {"type": "template", "name": "x"}},
            headers=tenant.headers,
        )
        assert response.status_code == 422, (to, response.text)
        assert response.json()["error"]["code"] == "invalid_recipient"


async def test_another_workspaces_number_is_a_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await client.post(
        "/api/v1/messages",
        json={
            "number_id": other_tenant.number_id,
            "to": CUSTOMER,
            "content": {"type": "template", "name": "x"},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 404


async def test_a_disconnected_number_cannot_queue(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, tenant.number_id)
        assert number is not None
        number.connection_state = "disconnected"
        number.connection_error = "The access token is invalid or expired."
    response = await client.post(
        "/api/v1/messages",
        json={"number_id": tenant.number_id, "to": CUSTOMER, "content": {"type": "template", "name": "x"}},
        headers=tenant.headers,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "number_not_connected"


async def test_reply_to_must_be_a_sent_message_of_the_conversation(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await open_window(webhook, wamid="wamid.question")
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    inbound = (
        await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=tenant.headers)
    ).json()["data"][0]
    ok = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"content": {"type": "text", "text": "Jawabannya ya"}, "reply_to": inbound["id"]},
        headers=tenant.headers,
    )
    assert ok.status_code == 202, ok.text
    assert ok.json()["reply_to_wamid"] == "wamid.question"
    missing = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"content": {"type": "text", "text": "?"}, "reply_to": 999999},
        headers=tenant.headers,
    )
    assert missing.status_code == 404


async def test_removing_a_number_fails_what_it_still_had_queued(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    queued = await client.post(
        "/api/v1/messages",
        json={"number_id": tenant.number_id, "to": CUSTOMER, "content": {"type": "template", "name": "x"}},
        headers=tenant.headers,
    )
    assert queued.status_code == 202
    assert (
        await client.delete(f"/api/v1/numbers/{tenant.number_id}", headers=tenant.headers)
    ).status_code == 204
    message = (await client.get(f"/api/v1/messages/{queued.json()['id']}", headers=tenant.headers)).json()
    assert message["status"] == "failed"
    assert message["error"]["title"] == "The sending number was removed"
    assert "Add the number again" in message["error"]["details"]
