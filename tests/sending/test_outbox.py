"""The outbox end to end in one process: the product's workers against the Cloud API simulator."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging import tasks
from layanify.messaging.models import Message
from layanify.messaging.tasks import OutboxWorker
from layanify.ratelimit import SendPacer, parse_rate, storage_for
from layanify.simulator import Simulator
from layanify.whatsapp.client import GraphClient
from tests import factories
from tests.conftest import RecordingLog, Tenant, database_locked
from tests.sending.conftest import TOKEN, eventually

BUDI = "6281234567890"


async def customer_writes(
    live: httpx.AsyncClient, simulator: Simulator, text: str = "Halo kak"
) -> dict[str, Any]:
    """Budi writes through the simulator; returns his conversation once the product shows it."""
    await simulator.customer_sends(BUDI, {"type": "text", "text": text})

    async def conversation() -> Any:
        data = (await live.get("/api/v1/conversations")).json()["data"]
        return data[0] if data else None

    found: dict[str, Any] = await eventually(conversation)
    return found


async def message_in(live: httpx.AsyncClient, message_id: int, *statuses: str) -> dict[str, Any]:
    """The message once its status is one of `statuses`."""

    async def check() -> Any:
        body = (await live.get(f"/api/v1/messages/{message_id}")).json()
        return body if body["status"] in statuses else None

    found: dict[str, Any] = await eventually(check)
    return found


async def send(
    live: httpx.AsyncClient, tenant: Tenant, content: dict[str, Any], to: str = BUDI
) -> dict[str, Any]:
    response = await live.post(
        "/api/v1/messages", json={"number_id": tenant.number_id, "to": to, "content": content}
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_reply_reaches_read_with_metas_times(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    conversation = await customer_writes(live, simulator)
    inbound = (await live.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()["data"][0]
    response = await live.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={
            "content": {"type": "text", "text": "Halo Budi, ada yang bisa dibantu?"},
            "reply_to": inbound["id"],
        },
    )
    assert response.status_code == 202
    message = await message_in(live, response.json()["id"], "read")
    assert message["wamid"].startswith("wamid.")
    assert [h["status"] for h in message["status_history"]] == ["sent", "delivered", "read"]
    assert message["status_times"]["delivered"] is not None
    assert message["status_times"]["read"] is not None
    assert message["error"] is None
    # What reached Meta: one send, with our id as callback data and the quoted message as context.
    sends = [r for r in simulator.sent_messages if r["wamid"] == message["wamid"]]
    assert len(sends) == 1
    body = sends[0]["body"]
    assert body["biz_opaque_callback_data"] == f"layanify:{message['id']}"
    assert body["context"] == {"message_id": inbound["wamid"]}
    assert body["text"] == {"body": "Halo Budi, ada yang bisa dibantu?", "preview_url": False}


async def test_a_template_opens_a_conversation(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    queued = await send(
        live,
        tenant,
        {"type": "template", "name": "order_update", "language": "id", "template_params": ["#1021", "besok"]},
    )
    message = await message_in(live, queued["id"], "delivered", "read")
    body = next(s["body"] for s in simulator.sent_messages if s["wamid"] == message["wamid"])
    assert body["template"]["name"] == "order_update"
    assert body["template"]["components"][0]["parameters"][1] == {"type": "text", "text": "besok"}


async def test_an_undeliverable_recipient_fails_with_the_reason(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    simulator.add_customer("6281111111111", name="Nomor Mati", undeliverable=True)
    queued = await send(live, tenant, {"type": "template", "name": "hello_world"}, to="6281111111111")
    message = await message_in(live, queued["id"], "failed")
    assert message["error"]["code"] == 131026
    assert message["error"]["action"] == "undeliverable"
    assert message["error"]["remedy"]
    assert message["status_times"]["failed"] is not None


async def test_a_wrong_template_fails_at_once_with_fix_request(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    queued = await send(live, tenant, {"type": "template", "name": "order_update", "language": "id"})
    message = await message_in(live, queued["id"], "failed")
    assert message["error"]["code"] == 132000
    assert message["error"]["action"] == "fix_request"
    assert message["attempts"] == 1  # a permanent error is not retried


async def test_throttling_is_retried_until_sent(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    simulator.set_faults(throttle_next=2)
    queued = await send(live, tenant, {"type": "template", "name": "hello_world"})
    message = await message_in(live, queued["id"], "sent", "delivered", "read")
    assert message["attempts"] == 3
    answers = [r["status"] for r in simulator.requests if r["path"].endswith("/messages")]
    assert answers[:3] == [400, 400, 200]
    assert message["error"] is None


async def test_server_errors_are_retried(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    simulator.set_faults(error_rate_5xx=1.0)
    queued = await send(live, tenant, {"type": "template", "name": "hello_world"})

    async def retried() -> Any:
        body = (await live.get(f"/api/v1/messages/{queued['id']}")).json()
        return body if body["attempts"] >= 2 and body["status"] == "queued" else None

    waiting = await eventually(retried)
    assert waiting["error"]["action"] == "retry_later"  # the last error shows while it waits
    simulator.set_faults(error_rate_5xx=0.0)
    message = await message_in(live, queued["id"], "sent", "delivered", "read")
    assert message["error"] is None


async def test_a_revoked_token_disconnects_the_number_and_pauses_its_queue(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    simulator.revoke_token(TOKEN)
    queued = await send(live, tenant, {"type": "template", "name": "hello_world"})

    async def disconnected() -> Any:
        response = await live.get(f"/api/v1/numbers/{tenant.number_id}")
        assert response.status_code == 200, response.text
        number = response.json()
        return number if number["connection_state"] == "disconnected" else None

    number = await eventually(disconnected)
    assert "token" in number["connection_error"].lower()
    message = (await live.get(f"/api/v1/messages/{queued['id']}")).json()
    assert message["status"] == "queued"  # paused, not failed
    assert message["error"]["action"] == "reconnect"
    refused = await send_raw(live, tenant, {"type": "template", "name": "hello_world"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "number_not_connected"
    # The owner pastes a new token; the connection test passes and the queue goes on.
    simulator.add_number(
        factories.FIXTURE_PHONE_NUMBER_ID,
        waba_id=factories.FIXTURE_WABA_ID,
        token="EAAG-new-token-1234",
        display_phone_number=factories.FIXTURE_DISPLAY_NUMBER,
    )
    updated = await live.patch(
        f"/api/v1/numbers/{tenant.number_id}", json={"access_token": "EAAG-new-token-1234"}
    )
    assert updated.status_code == 200
    assert updated.json()["token_last4"] == "1234"
    report = (await live.post(f"/api/v1/numbers/{tenant.number_id}/test")).json()
    assert report["ok"] is True, report
    await message_in(live, queued["id"], "sent", "delivered", "read")


async def send_raw(live: httpx.AsyncClient, tenant: Tenant, content: dict[str, Any]) -> httpx.Response:
    return await live.post(
        "/api/v1/messages", json={"number_id": tenant.number_id, "to": BUDI, "content": content}
    )


async def test_the_per_number_limit_is_never_exceeded(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    await live.patch(f"/api/v1/numbers/{tenant.number_id}", json={"rate_limit_per_second": 5})
    ids = [
        (await send(live, tenant, {"type": "template", "name": "hello_world"}, to=f"62812000000{i:02d}"))[
            "id"
        ]
        for i in range(15)
    ]
    for message_id in ids:
        await message_in(live, message_id, "sent", "delivered", "read")
    times = sorted(
        r["time"] for r in simulator.requests if r["path"].endswith("/messages") and r["status"] == 200
    )
    assert len(times) == 15
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= 5  # the limit, as the receiving side counts it


async def crashed_claim(sessionmaker: Sessionmaker, tenant: Tenant, *, expired_for: timedelta) -> int:
    """A message a worker claimed and then died with: `sending`, its lease expired `expired_for` ago."""
    from layanify.contacts.service import upsert_contact
    from layanify.conversations.service import open_conversation

    async with unit_of_work(sessionmaker) as session:
        contact = await upsert_contact(session, tenant.workspace_id, BUDI)
        conversation = await open_conversation(session, tenant.workspace_id, tenant.number_id, contact.id)
        message = Message(
            workspace_id=tenant.workspace_id,
            conversation_id=conversation.id,
            number_id=tenant.number_id,
            recipient=BUDI,
            direction="outbound",
            type="template",
            content={"type": "template", "name": "hello_world", "language": "en_US"},
            status="sending",
            timestamp=utcnow(),
            attempts=1,
            lease_expires_at=utcnow() - expired_for,
        )
        session.add(message)
        await session.flush()
        return message.id


async def test_a_crash_between_claim_and_send_is_recovered(
    sessionmaker: Sessionmaker, tenant: Tenant, simulator: Simulator, live: httpx.AsyncClient
) -> None:
    message_id = await crashed_claim(sessionmaker, tenant, expired_for=timedelta(minutes=5))
    message = await message_in(live, message_id, "sent", "delivered", "read")
    assert message["attempts"] == 2
    assert (
        len(
            [
                s
                for s in simulator.sent_messages
                if s["body"].get("biz_opaque_callback_data") == f"layanify:{message_id}"
            ]
        )
        == 1
    )


async def test_a_send_whose_answer_was_lost_is_reconciled_not_sent_again(
    sessionmaker: Sessionmaker, tenant: Tenant, simulator: Simulator, live: httpx.AsyncClient
) -> None:
    # The worker died a moment ago, after Meta had accepted the message: its status webhooks name it
    # (callback data) within the reconcile window, so it must not be sent again.
    message_id = await crashed_claim(sessionmaker, tenant, expired_for=timedelta(seconds=0))
    graph = httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim.test")
    accepted = await graph.post(
        f"/v23.0/{factories.FIXTURE_PHONE_NUMBER_ID}/messages",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "messaging_product": "whatsapp",
            "to": BUDI,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
            "biz_opaque_callback_data": f"layanify:{message_id}",
        },
    )
    await graph.aclose()
    wamid = accepted.json()["messages"][0]["id"]
    message = await message_in(live, message_id, "delivered", "read")
    assert message["wamid"] == wamid
    await asyncio.sleep(2.5)  # past the reconcile window: a resend would have happened by now
    sends = [
        s
        for s in simulator.sent_messages
        if s["body"].get("biz_opaque_callback_data") == f"layanify:{message_id}"
    ]
    assert len(sends) == 1


async def test_every_type_is_accepted_by_the_simulator(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant
) -> None:
    conversation = await customer_writes(live, simulator)
    inbound = (await live.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()["data"][0]
    contents: list[dict[str, Any]] = [
        {"type": "text", "text": "Cek https://toko.example/promo", "preview_url": True},
        {"type": "image", "link": "https://toko.example/katalog.jpg", "caption": "Katalog"},
        {"type": "document", "link": "https://toko.example/invoice.pdf", "filename": "invoice.pdf"},
        {"type": "audio", "link": "https://toko.example/pesan.ogg"},
        {"type": "video", "link": "https://toko.example/demo.mp4"},
        {"type": "sticker", "link": "https://toko.example/stiker.webp"},
        {"type": "location", "latitude": -6.2, "longitude": 106.8, "name": "Toko Budi", "address": "Jakarta"},
        {
            "type": "contacts",
            "contacts": [
                {
                    "name": {"formatted_name": "CS Toko", "first_name": "CS"},
                    "phones": [{"phone": "+6281200000000", "type": "WORK"}],
                }
            ],
        },
        {
            "type": "interactive",
            "body": "Mau lanjut?",
            "buttons": [{"id": "yes", "title": "Ya"}, {"id": "no", "title": "Tidak"}],
        },
        {
            "type": "interactive",
            "body": "Pilih ukuran",
            "button": "Ukuran",
            "sections": [{"title": "Ukuran", "rows": [{"id": "s", "title": "S"}, {"id": "m", "title": "M"}]}],
        },
        {"type": "reaction", "message_id": inbound["wamid"], "emoji": "👍"},
    ]
    ids = [(await send(live, tenant, content))["id"] for content in contents]
    for message_id in ids:
        message = await message_in(live, message_id, "sent", "delivered", "read", "failed")
        assert message["status"] != "failed", message
    types = Counter(s["body"]["type"] for s in simulator.sent_messages)
    assert set(types) >= {
        "text",
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "reaction",
    }


@pytest.mark.parametrize(("failure", "level"), [("busy", "warning"), ("bug", "exception")])
async def test_a_failed_pass_over_crashed_workers_claims_is_logged_by_kind_and_sending_goes_on(
    settings: Settings, sessionmaker: Sessionmaker, monkeypatch: pytest.MonkeyPatch, failure: str, level: str
) -> None:
    """A database locked past the busy timeout is one warning line (the worker tries again by itself);
    a bug is logged with its traceback. Either way the worker goes on to claim what is queued."""

    async def failing(*_: Any, **__: Any) -> int:
        raise database_locked() if failure == "busy" else KeyError("bug")

    stop = asyncio.Event()
    claims = 0

    async def claim() -> int:
        nonlocal claims
        claims += 1
        stop.set()
        return 0

    worker = OutboxWorker(
        sessionmaker,
        settings,
        Keyring.from_setting(settings.encryption_keys.get_secret_value()),
        GraphClient(base_url="http://127.0.0.1:9", version="v23.0"),
        SendPacer(storage_for(None), recipient_rate=parse_rate("10 per minute")),
    )
    recorded = RecordingLog()
    monkeypatch.setattr(tasks, "log", recorded)
    monkeypatch.setattr(tasks.repository, "release_expired_claims", failing)
    monkeypatch.setattr(worker, "claim_and_dispatch", claim)
    await asyncio.wait_for(worker.run(stop), 5)
    assert claims == 1  # it went on after the failed pass
    failures = [call for call in recorded.calls if call[1] == "outbox_release_failed"]
    assert failures == [(level, "outbox_release_failed")]
