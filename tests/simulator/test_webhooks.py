"""Webhooks: Meta's shapes (as tests/data/whatsapp), signatures, order, failures, retries, faults."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from layanify.simulator import Simulator
from layanify.whatsapp.signature import signature_is_valid
from tests.conftest import fixture
from tests.simulator.conftest import AUTH, BUDI, DISPLAY, PNID, SECRET, SITI, WABA, Hooks, text_send

URL = f"/v23.0/{PNID}/messages"


def keys(obj: Any) -> Any:
    """The nested key structure of a JSON value (lists by their first item), to compare shapes."""
    if isinstance(obj, dict):
        return {k: keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [keys(obj[0])] if obj else []
    return type(obj).__name__


def value_of(body: dict[str, Any]) -> dict[str, Any]:
    """The single change value of a body."""
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Send and return the wamid."""
    response = await client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    wamid: str = response.json()["messages"][0]["id"]
    return wamid


async def test_statuses_sent_delivered_read_signed_and_shaped(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    wamid = await send(client, text_send(biz_opaque_callback_data="msg_123"))
    await sim.wait_idle(5)
    statuses = hooks.statuses(wamid)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for request in hooks.received:
        assert request.headers["content-type"] == "application/json"
        assert signature_is_valid(SECRET, request.content, request.headers["x-hub-signature-256"])
        assert b": " not in request.content
        assert b", " not in request.content
    sent_body = hooks.bodies()[0]
    assert sent_body["entry"][0]["id"] == WABA
    assert sent_body["entry"][0]["changes"][0]["field"] == "messages"
    assert value_of(sent_body)["metadata"] == {"display_phone_number": DISPLAY, "phone_number_id": PNID}
    sent, delivered, read = statuses
    assert all(s["biz_opaque_callback_data"] == "msg_123" for s in statuses)
    assert isinstance(sent["timestamp"], str)
    assert sent["recipient_id"] == BUDI
    for ours, name in ((sent, "status_sent"), (delivered, "status_delivered"), (read, "status_read")):
        theirs = value_of(fixture(name))["statuses"][0]
        if "biz_opaque_callback_data" not in theirs:
            ours = {k: v for k, v in ours.items() if k != "biz_opaque_callback_data"}
        assert keys(ours) == keys(theirs), name
    assert keys(sent_body) == keys(fixture("status_sent"))
    assert sim.sent_messages[0]["status"] == "read"


async def test_no_callback_data_means_no_echo(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    wamid = await send(client, text_send())
    await sim.wait_idle(5)
    assert all("biz_opaque_callback_data" not in s for s in hooks.statuses(wamid))


async def test_window_closed_is_accepted_then_fails_131047(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.add_customer(BUDI, name="Budi Santoso", last_message_at=datetime.now(UTC) - timedelta(hours=25))
    wamid = await send(client, text_send(biz_opaque_callback_data="late"))
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    template_wamid = await send(client, {**text_send(), "type": "template", "template": template})
    await sim.wait_idle(5)
    (failed,) = hooks.statuses(wamid)
    assert failed["status"] == "failed"
    assert failed["biz_opaque_callback_data"] == "late"
    assert failed["errors"][0]["code"] == 131047
    assert [s["status"] for s in hooks.statuses(template_wamid)] == ["sent", "delivered", "read"]
    assert hooks.statuses(template_wamid)[0]["pricing"]["category"] == "utility"


async def test_never_wrote_means_window_closed(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    wamid = await send(client, text_send(to=SITI))
    await sim.wait_idle(5)
    assert hooks.statuses(wamid)[0]["errors"][0]["code"] == 131047


async def test_undeliverable_fails_131026_with_metas_shape(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.add_customer(BUDI, name="Budi", undeliverable=True)
    template = {"name": "hello_world", "language": {"code": "en_US"}}
    wamid = await send(client, {**text_send(), "type": "template", "template": template})
    await sim.wait_idle(5)
    (failed,) = hooks.statuses(wamid)
    assert keys(failed) == keys(value_of(fixture("status_failed"))["statuses"][0])
    assert failed["errors"][0]["code"] == 131026
    assert sim.sent_messages[0]["status"] == "failed"


INBOUND: list[tuple[dict[str, Any], str]] = [
    ({"type": "text", "text": "Halo kak 🙏"}, "text"),
    ({"type": "image", "caption": "Bukti transfer"}, "image"),
    ({"type": "audio", "voice": True}, "audio_voice"),
    ({"type": "document", "filename": "INV.pdf", "caption": "Invoice"}, "document"),
    ({"type": "sticker", "animated": True}, "sticker"),
    ({"type": "location", "url": "https://www.grand-indonesia.com/"}, "location"),
    (
        {"type": "interactive", "button_reply": {"id": "confirm", "title": "Konfirmasi"}},
        "interactive_button_reply",
    ),
    (
        {"type": "interactive", "list_reply": {"id": "exp", "title": "Express", "description": "1-2 hari"}},
        "interactive_list_reply",
    ),
    ({"type": "button", "payload": "STOP_PROMO", "text": "Berhenti promo"}, "button"),
    ({"type": "reaction", "message_id": "wamid.X", "emoji": "👍"}, "reaction"),
    ({"type": "reaction", "message_id": "wamid.X"}, "reaction_removed"),
]


@pytest.mark.parametrize(("spec", "name"), INBOUND, ids=[name for _, name in INBOUND])
async def test_inbound_messages_match_metas_shapes(
    sim: Simulator, hooks: Hooks, spec: dict[str, Any], name: str
) -> None:
    reply_to = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkQ1Njc3QkMwNjg5MzlENTQyMQA="
    theirs_body = fixture(name)
    theirs = value_of(theirs_body)["messages"][0]
    context = reply_to if "context" in theirs else None
    wamid = await sim.customer_sends(BUDI, spec, context_wamid=context)
    await sim.wait_idle(5)
    (body,) = hooks.bodies()
    ours = value_of(body)["messages"][0]
    assert ours["id"] == wamid
    assert ours["from"] == BUDI
    kind = theirs["type"]
    if kind in ("image", "video", "audio", "document", "sticker"):
        theirs = {**theirs, kind: {k: v for k, v in theirs[kind].items() if k != "url"}}  # url: see below
    assert keys(ours) == keys(theirs)
    assert keys(body)["entry"][0]["changes"][0].keys() == keys(theirs_body)["entry"][0]["changes"][0].keys()
    assert value_of(body)["contacts"] == [{"profile": {"name": "Budi Santoso"}, "wa_id": BUDI}]
    if context:
        assert ours["context"] == {"from": DISPLAY, "id": reply_to}


async def test_emoji_is_escaped_like_meta(sim: Simulator, hooks: Hooks) -> None:
    await sim.customer_sends(BUDI, {"type": "text", "text": "Terima kasih 🙏"})
    await sim.wait_idle(5)
    raw = hooks.received[0].content
    assert b"\\ud83d\\ude4f" in raw
    assert "🙏".encode() not in raw


async def test_contacts_and_wamid_layout(sim: Simulator, hooks: Hooks) -> None:
    wamid = await sim.customer_sends(BUDI, {"type": "contacts"})
    await sim.wait_idle(5)
    message = hooks.messages()[0]
    assert message["contacts"][0]["name"]["formatted_name"]
    raw = base64.b64decode(wamid.removeprefix("wamid."))
    assert raw[:3] == bytes((0x1C, 0x18, len(BUDI)))
    assert raw[3 : 3 + len(BUDI)] == BUDI.encode()
    assert raw[3 + len(BUDI) : 7 + len(BUDI)] == bytes((0x15, 0x02, 0x00, 0x12))
    assert raw[-1] == 0


async def test_inbound_media_is_downloadable_with_the_token_only(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    await sim.customer_sends(BUDI, {"type": "image", "caption": "Foto"})
    await sim.wait_idle(5)
    image = hooks.messages()[0]["image"]
    info = await client.get(f"/v23.0/{image['id']}", headers=AUTH)
    assert info.status_code == 200
    meta = info.json()
    assert set(meta) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}
    assert meta["mime_type"] == "image/jpeg" == image["mime_type"]
    assert meta["url"].startswith("http://sim/_sim/media/")
    assert (await client.get(meta["url"])).status_code == 401
    download = await client.get(meta["url"], headers=AUTH)
    assert download.status_code == 200
    assert download.content.startswith(b"\xff\xd8")
    assert len(download.content) == meta["file_size"]
    assert base64.b64encode(hashlib.sha256(download.content).digest()).decode() == image["sha256"]


async def test_inbound_media_carries_a_url_with_public_url(sim: Simulator, hooks: Hooks) -> None:
    sim.config.public_url = "http://127.0.0.1:8090"
    await sim.customer_sends(BUDI, {"type": "audio", "voice": True})
    await sim.wait_idle(5)
    audio = hooks.messages()[0]["audio"]
    assert keys(audio) == keys(value_of(fixture("audio_voice"))["messages"][0]["audio"])
    assert audio["url"].startswith("http://127.0.0.1:8090/_sim/media/")


async def test_mark_as_read_and_typing(client: httpx.AsyncClient, sim: Simulator) -> None:
    first = await sim.customer_sends(BUDI, {"type": "text", "text": "satu"})
    second = await sim.customer_sends(BUDI, {"type": "text", "text": "dua"})
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": second,
        "typing_indicator": {"type": "text"},
    }
    response = await client.post(URL, json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    conversation = sim.messaging.conversation(BUDI)
    assert [m["read_by_business"] for m in conversation["messages"]] == [True, True]
    assert conversation["typing"] is True
    assert first
    await client.post(URL, json=text_send(), headers=AUTH)
    assert sim.messaging.conversation(BUDI)["typing"] is False
    unknown = await client.post(URL, json={**body, "message_id": "wamid.nope"}, headers=AUTH)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == 100


async def test_customer_reads_when_auto_read_is_off(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.config.auto_read = False
    wamid = await send(client, text_send())
    await sim.wait_idle(5)
    assert [s["status"] for s in hooks.statuses(wamid)] == ["sent", "delivered"]
    assert await sim.customer_reads(BUDI) == [wamid]
    await sim.wait_idle(5)
    assert [s["status"] for s in hooks.statuses(wamid)] == ["sent", "delivered", "read"]
    assert await sim.customer_reads(BUDI) == []


async def test_endpoint_down_then_back_delivers_everything(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    hooks.fail_next = 3
    wamid = await send(client, text_send())
    await sim.wait_idle(5)
    assert hooks.answered.count(500) == 3
    assert sorted(s["status"] for s in hooks.statuses(wamid)) == ["delivered", "read", "sent"]
    attempts = [d["attempt"] for d in sim.delivered_webhooks if not d["ok"]]
    assert attempts
    assert max(d["attempt"] for d in sim.delivered_webhooks) >= 2


async def test_webhook_down_fault_retries_then_gives_up(sim: Simulator, hooks: Hooks) -> None:
    sim.set_faults(webhook_down=True)
    await sim.customer_sends(BUDI, {"type": "text", "text": "halo"})
    await sim.wait_idle(5)
    log = sim.delivered_webhooks
    assert [d["attempt"] for d in log] == [1, 2, 3, 4, 5]
    assert not any(d["ok"] for d in log)
    assert hooks.received == []


async def test_duplicate_fault_delivers_identical_signed_copies(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.set_faults(duplicate_rate=1.0)
    await send(client, text_send())
    await sim.wait_idle(5)
    assert len(hooks.received) == 6
    contents = [r.content for r in hooks.received]
    assert all(contents.count(c) == 2 for c in contents)
    assert sum(d["duplicate"] for d in sim.delivered_webhooks) == 3


async def test_reorder_fault_delivers_statuses_in_reverse(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.config.status_delays = (0.0, 0.03, 0.06)
    sim.set_faults(reorder=True)
    wamid = await send(client, text_send())
    await sim.wait_idle(5)
    assert [s["status"] for s in hooks.statuses(wamid)] == ["read", "delivered", "sent"]
    assert sim.sent_messages[0]["status"] == "read"  # the shown status never moves backwards


async def test_bodies_parse_as_json_with_one_entry(sim: Simulator, hooks: Hooks) -> None:
    await sim.customer_sends(SITI, {"type": "text", "text": "x"})
    await sim.wait_idle(5)
    body = json.loads(hooks.received[0].content)
    assert body["object"] == "whatsapp_business_account"
    assert len(body["entry"]) == 1


async def test_batching_puts_due_statuses_of_a_number_in_one_post(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    sim.config.webhook_batch_max = 50
    sim.config.auto_read = False
    sim.emitter.pause()  # hold both sends' statuses, then release them together
    first = await send(client, text_send())
    second = await send(client, text_send(body="lagi"))
    assert hooks.received == []
    sim.emitter.resume()
    await sim.wait_idle(5)
    assert len(hooks.received) == 1
    statuses = hooks.bodies()[0]["entry"][0]["changes"][0]["value"]["statuses"]
    assert {(s["id"], s["status"]) for s in statuses} == {
        (first, "sent"),
        (first, "delivered"),
        (second, "sent"),
        (second, "delivered"),
    }
