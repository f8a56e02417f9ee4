"""Auto-reply, business hours, read receipts and reply delay, applied to signed webhooks as they arrive.

Time is frozen with time-machine at a known instant in Jakarta, and each customer message carries
that instant as Meta's timestamp, so every rule is checked at the exact time it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import ChatAction, Message
from tests import factories
from tests.conftest import Tenant, WebhookPoster

BUDI = "6281234567890"
SITI = "6289876543210"
# Monday 30 November 2026, 10:00 in Jakarta (UTC+7): open under the default office hours.
MONDAY_10_WIB = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
# Saturday 28 November 2026, 10:00 in Jakarta: closed.
SATURDAY_10_WIB = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

GREETING = {"type": "text", "text": "Halo! Terima kasih sudah menghubungi Toko Budi."}
AWAY = {"type": "text", "text": "Kami sedang tutup. Buka Senin–Jumat 08.00–17.00 WIB."}
PRICES = {"type": "text", "text": "Daftar harga: kaos 75rb, kemeja 150rb."}


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(MONDAY_10_WIB, tick=False) as traveller:
        yield traveller


def settings(**auto_reply: Any) -> dict[str, Any]:
    """Office hours Monday–Friday 08:00–17:00 WIB, auto-reply on with the given parts."""
    return {
        "business_hours": {"enabled": True, "timezone": "Asia/Jakarta"},
        "auto_reply": {"enabled": True, **auto_reply},
        "read_receipts": "on_open",
    }


async def configure(client: httpx.AsyncClient, tenant: Tenant, data: dict[str, Any]) -> None:
    response = await client.put(
        f"/api/v1/numbers/{tenant.number_id}/settings", json=data, headers=tenant.headers
    )
    assert response.status_code == 200, response.text


def inbound(
    wamid: str, at: datetime, *, wa_id: str = BUDI, kind: str = "text", body: Any = "Halo"
) -> dict[str, Any]:
    """A customer's message webhook in Meta's shape, written at `at`."""
    payload = factories.text_message(wamid, "", wa_id=wa_id, timestamp=int(at.timestamp()))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = kind
    message[kind] = {"body": body} if kind == "text" else body
    return payload


async def says(webhook: WebhookPoster, wamid: str, text: str, *, wa_id: str = BUDI) -> None:
    """The customer writes now (the frozen clock's now)."""
    await webhook.deliver(inbound(wamid, datetime.now(UTC), wa_id=wa_id, body=text))


async def outbound(sessionmaker: Sessionmaker) -> list[Message]:
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(
            select(Message).where(Message.direction == "outbound").order_by(Message.id)
        )
        return list(rows.scalars())


async def actions(sessionmaker: Sessionmaker) -> list[ChatAction]:
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(ChatAction).order_by(ChatAction.id))).scalars())


async def test_the_first_message_of_a_conversation_is_greeted_once(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(client, tenant, settings(greeting={"enabled": True, "reply": GREETING}))
    await says(webhook, "wamid.g1", "Halo kak")
    clock.shift(timedelta(minutes=5))
    await says(webhook, "wamid.g2", "Mau tanya stok")
    replies = await outbound(sessionmaker)
    assert len(replies) == 1
    reply = replies[0]
    assert reply.is_automated is True
    assert reply.status == "queued"
    assert reply.content["text"] == GREETING["text"]
    assert reply.recipient == BUDI
    # The API shows it as automated in the conversation, after the customer's message.
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    messages = (
        await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=tenant.headers)
    ).json()["data"]
    assert [(m["direction"], m["is_automated"]) for m in messages] == [
        ("inbound", False),
        ("outbound", True),
        ("inbound", False),
    ]


async def test_a_customer_back_after_a_day_is_greeted_again(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(client, tenant, settings(greeting={"enabled": True, "reply": GREETING}))
    await says(webhook, "wamid.d1", "Halo")
    clock.shift(timedelta(hours=25))  # Tuesday 11:00 WIB, a new conversation
    await says(webhook, "wamid.d2", "Halo lagi")
    assert [m.content["text"] for m in await outbound(sessionmaker)] == [GREETING["text"]] * 2


async def test_outside_business_hours_the_away_message_answers_and_inside_it_does_not(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(client, tenant, settings(away={"enabled": True, "reply": AWAY}))
    clock.move_to(SATURDAY_10_WIB)
    await says(webhook, "wamid.a1", "Buka?")
    clock.move_to(MONDAY_10_WIB)
    await says(webhook, "wamid.a2", "Halo", wa_id=SITI)
    replies = await outbound(sessionmaker)
    assert [(m.recipient, m.content["text"]) for m in replies] == [(BUDI, AWAY["text"])]


async def test_a_holiday_is_closed_and_a_night_shift_past_midnight_is_open(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    data = settings(away={"enabled": True, "reply": AWAY})
    data["business_hours"]["weekly"] = {
        "mon": [{"start": "08:00", "end": "17:00"}],
        "fri": [{"start": "20:00", "end": "02:00"}],
    }
    data["business_hours"]["holidays"] = [{"date": "2026-11-30", "name": "Cuti bersama"}]
    await configure(client, tenant, data)
    await says(webhook, "wamid.h1", "Buka hari ini?")  # Monday 10:00, a holiday
    clock.move_to(datetime(2026, 11, 27, 18, 30, tzinfo=UTC))  # Saturday 01:30 WIB, Friday's shift
    await says(webhook, "wamid.h2", "Masih buka?", wa_id=SITI)
    assert [m.recipient for m in await outbound(sessionmaker)] == [BUDI]


async def test_keyword_rules_match_case_insensitively_in_priority_order(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    rules = [
        {"id": "harga", "match": "contains", "keywords": ["harga", "price"], "reply": PRICES},
        {
            "id": "resi",
            "match": "regex",
            "keywords": [r"resi\s*\d{6,}"],
            "priority": 1,
            "reply": {"type": "text", "text": "Resi Anda sedang kami cek."},
        },
        {
            "id": "menu",
            "match": "exact",
            "keywords": ["menu"],
            "reply": {"type": "text", "text": "1. Harga 2. Resi"},
        },
    ]
    await configure(client, tenant, settings(keywords=rules, greeting={"enabled": True, "reply": GREETING}))
    await says(webhook, "wamid.k1", "Berapa HARGA kaos ini?")
    await says(webhook, "wamid.k2", "harga resi 12345678 dong", wa_id=SITI)  # both match; resi runs first
    clock.shift(timedelta(minutes=1))
    await says(webhook, "wamid.k3", "  MENU ")
    await says(
        webhook, "wamid.k4", "lihat menu", wa_id=SITI
    )  # exact: no match, and Siti was already answered
    texts = [(m.recipient, m.content["text"]) for m in await outbound(sessionmaker)]
    assert texts == [
        (BUDI, PRICES["text"]),
        (SITI, "Resi Anda sedang kami cek."),
        (BUDI, "1. Harga 2. Resi"),
    ]


async def test_a_rule_answers_a_contact_once_per_cooldown(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    rule = {"id": "harga", "match": "contains", "keywords": ["harga"], "reply": PRICES}
    await configure(client, tenant, settings(keywords=[rule]))
    await says(webhook, "wamid.c1", "harga?")
    clock.shift(timedelta(hours=2))
    await says(webhook, "wamid.c2", "harga??")
    await says(webhook, "wamid.c3", "harga", wa_id=SITI)  # another customer is answered
    clock.shift(timedelta(hours=23))  # a day after the first answer
    await says(webhook, "wamid.c4", "harga lagi")
    assert [m.recipient for m in await outbound(sessionmaker)] == [BUDI, SITI, BUDI]


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("reaction", {"message_id": "wamid.earlier", "emoji": "\U0001f44d"}),
        ("reaction", {"message_id": "wamid.earlier"}),  # a reaction removed
        ("unsupported", {"type": "edit"}),
    ],
)
async def test_reactions_and_unsupported_messages_get_no_auto_reply(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    clock: Any,
    kind: str,
    body: dict[str, Any],
) -> None:
    await configure(client, tenant, settings(greeting={"enabled": True, "reply": GREETING}))
    await webhook.deliver(inbound("wamid.r1", datetime.now(UTC), kind=kind, body=body))
    assert await outbound(sessionmaker) == []


async def test_statuses_of_an_auto_reply_never_trigger_another(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(
        client,
        tenant,
        settings(greeting={"enabled": True, "reply": GREETING}, away={"enabled": True, "reply": AWAY}),
    )
    await says(webhook, "wamid.l1", "Halo")
    [reply] = await outbound(sessionmaker)
    async with unit_of_work(sessionmaker) as session:
        stored = await session.get(Message, reply.id)
        assert stored is not None
        stored.status, stored.wamid = "sent", "wamid.reply1"
    stamp = int(datetime.now(UTC).timestamp())
    for status in ("sent", "delivered", "read"):
        await webhook.deliver(factories.status_update("wamid.reply1", status, timestamp=stamp))
    assert [m.id for m in await outbound(sessionmaker)] == [reply.id]


async def test_an_agent_can_switch_auto_reply_off_for_one_conversation(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    rule = {"id": "harga", "match": "contains", "keywords": ["harga"], "reply": PRICES}
    await configure(client, tenant, settings(keywords=[rule]))
    await says(webhook, "wamid.o1", "Halo")
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    assert conversation["auto_reply_enabled"] is True
    changed = await client.patch(
        f"/api/v1/conversations/{conversation['id']}",
        json={"auto_reply_enabled": False},
        headers=tenant.headers,
    )
    assert changed.status_code == 200
    assert changed.json()["auto_reply_enabled"] is False
    await says(webhook, "wamid.o2", "harga?")
    await says(webhook, "wamid.o3", "harga?", wa_id=SITI)  # other conversations still answered
    assert [m.recipient for m in await outbound(sessionmaker)] == [SITI]


async def test_a_message_processed_long_after_it_was_written_gets_no_auto_reply(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(client, tenant, settings(greeting={"enabled": True, "reply": GREETING}))
    written = datetime.now(UTC) - timedelta(hours=3)  # Meta retried it for hours
    await webhook.deliver(inbound("wamid.s1", written))
    assert await outbound(sessionmaker) == []


async def test_an_auto_reply_waits_its_delay_and_an_agent_answering_first_cancels_it(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    data = settings(greeting={"enabled": True, "reply": GREETING})
    data["reply_delay_seconds"] = 45
    await configure(client, tenant, data)
    await says(webhook, "wamid.w1", "Halo")
    [reply] = await outbound(sessionmaker)
    assert reply.next_attempt_at == datetime.now(UTC) + timedelta(seconds=45)
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    clock.shift(timedelta(seconds=20))
    answer = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"content": {"type": "text", "text": "Halo Budi, saya Rina. Ada yang bisa dibantu?"}},
        headers=tenant.headers,
    )
    assert answer.status_code == 202
    shown = (await client.get(f"/api/v1/messages/{reply.id}", headers=tenant.headers)).json()
    assert shown["status"] == "cancelled"
    assert (await client.get(f"/api/v1/messages/{answer.json()['id']}", headers=tenant.headers)).json()[
        "status"
    ] == "queued"


async def test_with_typing_on_the_indicator_is_due_before_the_reply_within_its_limit(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    now = datetime.now(UTC)
    for delay, typing_due, reply_due in ((0, 0, 2), (10, 0, 10), (120, 100, 120)):
        data = settings(greeting={"enabled": True, "reply": GREETING})
        data.update(typing_indicator=True, reply_delay_seconds=delay)
        await configure(client, tenant, data)
        wa_id = f"62811000000{delay:02d}"[-12:]
        await says(webhook, f"wamid.t{delay}", "Halo", wa_id=wa_id)
        reply = next(m for m in await outbound(sessionmaker) if m.recipient == wa_id)
        typing = [a for a in await actions(sessionmaker) if a.reply_message_id == reply.id]
        assert len(typing) == 1
        assert typing[0].kind == "typing"
        assert typing[0].due_at == now + timedelta(seconds=typing_due)
        assert reply.next_attempt_at == now + timedelta(seconds=reply_due)
        assert (reply.next_attempt_at - typing[0].due_at) <= timedelta(seconds=25)


async def test_read_receipts_on_arrival_queue_one_call_per_conversation(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await configure(client, tenant, {"read_receipts": "on_arrival"})
    for i in range(3):
        response = await webhook.post(inbound(f"wamid.ra{i}", datetime.now(UTC), body=f"pesan {i}"))
        assert response.status_code == 200
    await webhook.process()
    [read] = await actions(sessionmaker)
    assert (read.kind, read.wamid, read.status) == ("read", "wamid.ra2", "pending")
    await says(webhook, "wamid.ra3", "satu lagi")
    [read] = await actions(sessionmaker)
    assert read.wamid == "wamid.ra3", "a pending call moves forward instead of adding another"


@pytest.mark.parametrize(("mode", "calls"), [("on_open", 1), ("never", 0), ("on_arrival", 1)])
async def test_opening_a_conversation_clears_unread_and_marks_read_only_when_set_to(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    clock: Any,
    mode: str,
    calls: int,
) -> None:
    await configure(client, tenant, {"read_receipts": mode})
    await says(webhook, "wamid.op1", "Halo")
    await says(webhook, "wamid.op2", "Ada orang?")
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    assert conversation["unread_count"] == 2
    opened = await client.post(f"/api/v1/conversations/{conversation['id']}/read", headers=tenant.headers)
    assert opened.status_code == 200
    assert opened.json()["conversation"]["unread_count"] == 0
    assert opened.json()["read_receipt_queued"] is (mode == "on_open")
    found = await actions(sessionmaker)
    assert len(found) == calls
    if calls:
        assert found[0].wamid == "wamid.op2"


async def test_another_workspaces_conversation_cannot_be_opened_or_changed(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, webhook: WebhookPoster, clock: Any
) -> None:
    await says(webhook, "wamid.x1", "Halo")
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    path = f"/api/v1/conversations/{conversation['id']}"
    assert (await client.post(f"{path}/read", headers=other_tenant.headers)).status_code == 404
    assert (await client.post(f"{path}/typing", headers=other_tenant.headers)).status_code == 404
    response = await client.patch(path, json={"auto_reply_enabled": False}, headers=other_tenant.headers)
    assert response.status_code == 404
    assert (await client.get(path, headers=tenant.headers)).json()["auto_reply_enabled"] is True


async def test_an_agent_composing_shows_typing_at_most_every_20_seconds_when_typing_is_on(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker, clock: Any
) -> None:
    await says(webhook, "wamid.ty1", "Halo")
    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    path = f"/api/v1/conversations/{conversation['id']}/typing"
    assert (await client.post(path, headers=tenant.headers)).json() == {"queued": False}  # typing is off
    await configure(client, tenant, {"typing_indicator": True})
    assert (await client.post(path, headers=tenant.headers)).json() == {"queued": True}
    clock.shift(timedelta(seconds=5))
    assert (await client.post(path, headers=tenant.headers)).json() == {"queued": False}
    [typing] = await actions(sessionmaker)
    assert (typing.kind, typing.wamid) == ("typing", "wamid.ty1")
    async with unit_of_work(sessionmaker) as session:  # the worker sent it
        stored = await session.get(ChatAction, typing.id)
        assert stored is not None
        stored.status = "done"
    clock.shift(timedelta(seconds=16))
    assert (await client.post(path, headers=tenant.headers)).json() == {"queued": True}
    clock.shift(timedelta(hours=25))  # the window closed: only a template can go out
    assert (await client.post(path, headers=tenant.headers)).json() == {"queued": False}
