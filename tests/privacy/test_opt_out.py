"""STOP / BERHENTI: the customer's opt-out stops automated replies and marketing templates; START resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from layanify.contacts.models import Contact
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.privacy.optout import keyword_of
from tests import factories
from tests.conftest import Tenant, WebhookPoster
from tests.privacy.conftest import BUDI, GREETING, NOW, SITI

GREETING_ONLY = {"auto_reply": {"enabled": True, "greeting": {"enabled": True, "reply": GREETING}}}
KEYWORD = {
    "auto_reply": {
        "enabled": True,
        "keywords": [
            {"keywords": ["stop", "harga"], "reply": {"type": "text", "text": "Daftar harga: 75rb"}}
        ],
        "greeting": {"enabled": True, "reply": GREETING},
    }
}


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


async def configure(client: httpx.AsyncClient, tenant: Tenant, data: dict[str, Any]) -> None:
    response = await client.put(
        f"/api/v1/numbers/{tenant.number_id}/settings", json=data, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


def text(wamid: str, body: str, *, wa_id: str = BUDI) -> dict[str, Any]:
    return factories.text_message(wamid, body, wa_id=wa_id, timestamp=int(datetime.now(UTC).timestamp()))


def button(wamid: str, payload: str) -> dict[str, Any]:
    body = text(wamid, "")
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "button"
    message["button"] = {"payload": payload, "text": "Berhenti promo"}
    return body


async def opted_out(sessionmaker: Sessionmaker, wa_id: str = BUDI) -> bool:
    async with unit_of_work(sessionmaker) as session:
        contact = (await session.execute(select(Contact).where(Contact.wa_id == wa_id))).scalar_one()
        return contact.marketing_opt_out


async def automated(sessionmaker: Sessionmaker) -> list[str]:
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(
            select(Message).where(Message.is_automated.is_(True)).order_by(Message.id)
        )
        return [m.content["text"] for m in rows.scalars()]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "text", "text": {"body": "STOP"}}, True),
        ({"type": "text", "text": {"body": "  berhenti \n"}}, True),
        ({"type": "text", "text": {"body": "Unsubscribe"}}, True),
        ({"type": "text", "text": {"body": "batal   langganan"}}, True),
        ({"type": "text", "text": {"body": "Mulai"}}, False),
        ({"type": "text", "text": {"body": "START"}}, False),
        ({"type": "text", "text": {"body": "stop kirim katalog lama ya"}}, None),
        ({"type": "text", "text": {"body": "STOP!"}}, None),
        ({"type": "button", "button": {"payload": "STOP", "text": "Berhenti"}}, True),
        ({"type": "button", "button": {"payload": "STOP_PROMO", "text": "Berhenti promo"}}, None),
        ({"type": "image", "image": {"caption": "STOP"}}, None),
    ],
)
def test_only_an_exact_keyword_counts(message: dict[str, Any], expected: bool | None) -> None:
    assert keyword_of(message) is expected


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize("word", ["STOP", "berhenti", "BATAL LANGGANAN"])
async def test_a_stop_message_opts_out_and_gets_no_automated_answer(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    word: str,
) -> None:
    await configure(client, tenant, KEYWORD)  # "stop" is even a keyword rule: still no answer
    await webhook.deliver(text("wamid.stop-1", word))
    assert await opted_out(sessionmaker)
    assert await automated(sessionmaker) == []
    # A later message of theirs is not answered either; Siti, who did not opt out, is.
    await webhook.deliver(text("wamid.stop-2", "harga?"), text("wamid.siti-1", "harga?", wa_id=SITI))
    assert await automated(sessionmaker) == ["Daftar harga: 75rb"]
    contact = (await client.get("/api/v1/contacts", headers=tenant.headers)).json()["data"][0]
    assert contact["wa_id"] == BUDI
    assert contact["marketing_opt_out"] is True


async def test_the_stop_button_opts_out_and_start_resumes(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    clock: Any,
) -> None:
    await configure(client, tenant, GREETING_ONLY)
    await webhook.deliver(button("wamid.button-stop", "STOP"))
    assert await opted_out(sessionmaker)
    assert await automated(sessionmaker) == []
    clock.shift(timedelta(minutes=1))
    await webhook.deliver(text("wamid.start", "MULAI"))
    assert not await opted_out(sessionmaker)
    clock.shift(timedelta(days=2))  # a new conversation: greeted now that they opted back in
    await webhook.deliver(text("wamid.back", "Halo lagi"))
    assert await automated(sessionmaker) == [GREETING["text"]]


@pytest.mark.usefixtures("clock")
async def test_a_stop_cancels_the_automated_reply_still_waiting_for_its_delay(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await configure(client, tenant, GREETING_ONLY | {"reply_delay_seconds": 30})
    await webhook.deliver(text("wamid.hello", "Halo"))
    await webhook.deliver(text("wamid.stop", "STOP"))
    async with unit_of_work(sessionmaker) as session:
        greeting = (await session.execute(select(Message).where(Message.is_automated.is_(True)))).scalar_one()
    assert greeting.status == "cancelled"


@pytest.mark.usefixtures("clock")
async def test_a_stop_in_a_batch_is_recorded_by_the_set_wise_path_too(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await configure(client, tenant, GREETING_ONLY)
    body = text("wamid.batch-1", "STOP")
    second = text("wamid.batch-2", "Halo", wa_id=SITI)
    body["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    await webhook.deliver(body)
    assert await opted_out(sessionmaker, BUDI)
    assert not await opted_out(sessionmaker, SITI)
    assert await automated(sessionmaker) == [GREETING["text"]]  # Siti's greeting only


@pytest.mark.usefixtures("clock")
async def test_a_marketing_template_is_refused_to_an_opted_out_customer(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    promo = factories.text_message("x", "x")
    promo["entry"][0]["changes"] = [
        {
            "field": "message_template_status_update",
            "value": {
                "event": "APPROVED",
                "message_template_id": 9001,
                "message_template_name": "promo_akhir_tahun",
                "message_template_language": "id",
                "reason": "NONE",
                "message_template_category": "MARKETING",
            },
        }
    ]
    await webhook.deliver(promo, "template_status_update", text("wamid.opt-out", "STOP"))

    def send(name: str) -> dict[str, Any]:
        return {
            "number_id": tenant.number_id,
            "to": BUDI,
            "content": {"type": "template", "name": name, "language": "id"},
        }

    refused = await client.post("/api/v1/messages", json=send("promo_akhir_tahun"), headers=tenant.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "opted_out"
    assert "opted out of marketing" in refused.json()["error"]["message"]
    # A utility template and a reply inside the window still go.
    utility = await client.post("/api/v1/messages", json=send("konfirmasi_pesanan"), headers=tenant.headers)
    assert utility.status_code == 202, utility.text
    reply = {"number_id": tenant.number_id, "to": BUDI, "content": {"type": "text", "text": "Baik kak"}}
    assert (await client.post("/api/v1/messages", json=reply, headers=tenant.headers)).status_code == 202
    # Writing START opts back in.
    await webhook.deliver(text("wamid.opt-in", "start"))
    again = await client.post("/api/v1/messages", json=send("promo_akhir_tahun"), headers=tenant.headers)
    assert again.status_code == 202, again.text
