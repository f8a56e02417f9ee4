"""Send endpoint: every type accepted with Meta's response shape; each synchronous error code and shape."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from layanify.simulator import Simulator
from tests.simulator.conftest import AUTH, BUDI, PNID, TOKEN, make_config, seed, text_send

URL = f"/v23.0/{PNID}/messages"
MEDIA_LINK = "https://example.com/file"

SENDS: dict[str, dict[str, Any]] = {
    "text": {"text": {"body": "Halo", "preview_url": False}},
    "image": {"image": {"link": MEDIA_LINK + ".jpg", "caption": "Foto"}},
    "video": {"video": {"link": MEDIA_LINK + ".mp4"}},
    "audio": {"audio": {"link": MEDIA_LINK + ".ogg"}},
    "document": {"document": {"link": MEDIA_LINK + ".pdf", "filename": "inv.pdf", "caption": "Invoice"}},
    "sticker": {"sticker": {"link": MEDIA_LINK + ".webp"}},
    "location": {"location": {"latitude": -6.2, "longitude": 106.8, "name": "Kantor", "address": "Jakarta"}},
    "contacts": {"contacts": [{"name": {"formatted_name": "Andi"}, "phones": [{"phone": "+62 812"}]}]},
    "interactive": {
        "interactive": {
            "type": "button",
            "body": {"text": "Konfirmasi?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Ya"}}]},
        }
    },
    "reaction": {"reaction": {"message_id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBOTgyAA==", "emoji": "👍"}},
}


def body_of(kind: str, **extra: Any) -> dict[str, Any]:
    """A valid send of `kind` to Budi."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": BUDI,
        "type": kind,
        **SENDS[kind],
        **extra,
    }


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The error object, after checking Meta's error envelope."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "OAuthException"
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["fbtrace_id"]
    return error


@pytest.mark.parametrize("kind", list(SENDS))
async def test_every_type_is_accepted_with_metas_response(client: httpx.AsyncClient, kind: str) -> None:
    response = await client.post(URL, json=body_of(kind, biz_opaque_callback_data="m-1"), headers=AUTH)
    assert response.status_code == 200, response.text
    data = response.json()
    assert set(data) == {"messaging_product", "contacts", "messages"}
    assert data["contacts"] == [{"input": BUDI, "wa_id": BUDI}]
    assert data["messages"][0]["id"].startswith("wamid.")
    assert "message_status" not in data["messages"][0]


async def test_list_and_media_by_uploaded_id(client: httpx.AsyncClient) -> None:
    upload = await client.post(
        f"/v23.0/{PNID}/media",
        headers=AUTH,
        data={"messaging_product": "whatsapp", "type": "image/png"},
        files={"file": ("a.png", b"\x89PNG..", "image/png")},
    )
    media_id = upload.json()["id"]
    image = await client.post(
        URL, json={**text_send(), "type": "image", "image": {"id": media_id}}, headers=AUTH
    )
    assert image.status_code == 200
    listing = {
        "type": "list",
        "body": {"text": "Pilih"},
        "action": {
            "button": "Kirim",
            "sections": [{"title": "Kurir", "rows": [{"id": "exp", "title": "Express"}]}],
        },
    }
    sent = await client.post(
        URL,
        json={
            **text_send(),
            "type": "interactive",
            "interactive": listing,
            "context": {"message_id": "wamid.X"},
        },
        headers=AUTH,
    )
    assert sent.status_code == 200


async def test_template_is_accepted_with_message_status(client: httpx.AsyncClient) -> None:
    template = {
        "name": "order_update",
        "language": {"code": "id"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "INV-1"}],
            }
        ],
    }
    response = await client.post(
        URL, json={**text_send(), "type": "template", "template": template}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["message_status"] == "accepted"


async def test_canonical_wa_id_from_formatted_number(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=text_send(to="+62 812-3456-7890"), headers=AUTH)
    assert response.json()["contacts"] == [{"input": "+62 812-3456-7890", "wa_id": BUDI}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": BUDI, "type": "text", "text": {"body": "x"}}, "messaging_product"),
        ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, "to"),
        ({"messaging_product": "whatsapp", "to": BUDI, "type": "text", "text": {}}, "text['body']"),
        ({"messaging_product": "whatsapp", "to": BUDI, "type": "text", "text": {"body": 5}}, "text['body']"),
        ({"messaging_product": "whatsapp", "to": BUDI, "type": "image", "image": {}}, "image"),
        (
            {"messaging_product": "whatsapp", "to": BUDI, "type": "image", "image": {"id": "404"}},
            "image['id']",
        ),
        (
            {"messaging_product": "whatsapp", "to": BUDI, "type": "location", "location": {"latitude": 1}},
            "longitude",
        ),
        (
            {
                "messaging_product": "whatsapp",
                "to": BUDI,
                "type": "interactive",
                "interactive": {"type": "button", "body": {"text": "x"}, "action": {"buttons": []}},
            },
            "buttons",
        ),
        (
            {"messaging_product": "whatsapp", "to": BUDI, "type": "template", "template": {"name": "x"}},
            "language",
        ),
        (
            {"messaging_product": "whatsapp", "to": BUDI, "type": "carrier_pigeon", "carrier_pigeon": {}},
            "type",
        ),
        ({**text_send(), "biz_opaque_callback_data": 12}, "biz_opaque_callback_data"),
    ],
)
async def test_invalid_fields_answer_100_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    error = assert_error(await client.post(URL, json=body, headers=AUTH), 400, 100)
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert field in error["error_data"]["details"]


async def test_wrong_missing_and_revoked_tokens_answer_190(client: httpx.AsyncClient, sim: Simulator) -> None:
    wrong = assert_error(
        await client.post(URL, json=text_send(), headers={"Authorization": "Bearer nope"}), 401, 190
    )
    assert "error_subcode" not in wrong
    assert_error(await client.post(URL, json=text_send()), 401, 190)
    sim.revoke_token(TOKEN)
    revoked = assert_error(await client.post(URL, json=text_send(), headers=AUTH), 401, 190)
    assert revoked["error_subcode"] == 460


async def test_token_of_another_number_answers_190(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.add_number(
        "200000000000001", waba_id="300000000000001", token="other", display_phone_number="15550000001"
    )
    assert_error(
        await client.post(URL, json=text_send(), headers={"Authorization": "Bearer other"}), 401, 190
    )


async def test_unknown_number_and_bad_version(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.post("/v23.0/999/messages", json=text_send(), headers=AUTH), 400, 100)
    assert error["error_subcode"] == 33
    assert_error(await client.post(f"/latest/{PNID}/messages", json=text_send(), headers=AUTH), 400, 2500)


async def test_unknown_template_answers_132001(client: httpx.AsyncClient) -> None:
    template = {"name": "nope", "language": {"code": "en_US"}}
    body = {**text_send(), "type": "template", "template": template}
    error = assert_error(await client.post(URL, json=body, headers=AUTH), 400, 132001)
    assert "nope" in error["error_data"]["details"]
    wrong_language = {**body, "template": {"name": "hello_world", "language": {"code": "id"}}}
    assert_error(await client.post(URL, json=wrong_language, headers=AUTH), 400, 132001)


async def test_parameter_count_mismatch_answers_132000(client: httpx.AsyncClient) -> None:
    template = {
        "name": "order_update",
        "language": {"code": "id"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Budi"}]}],
    }
    body = {**text_send(), "type": "template", "template": template}
    error = assert_error(await client.post(URL, json=body, headers=AUTH), 400, 132000)
    assert "(1)" in error["error_data"]["details"]
    assert "(2)" in error["error_data"]["details"]
    missing_header = {
        "name": "invoice",
        "language": {"code": "id"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "1"}]}],
    }
    body = {**text_send(), "type": "template", "template": missing_header}
    assert_error(await client.post(URL, json=body, headers=AUTH), 400, 132000)


async def test_throughput_burst_answers_130429() -> None:
    sim = Simulator(make_config(rate_limit_per_second=5, callback_url=None))
    seed(sim)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as client:
        recipients = [f"62811000000{i:02d}" for i in range(6)]
        answers = [await client.post(URL, json=text_send(to=to), headers=AUTH) for to in recipients]
    await sim.stop()
    assert [a.status_code for a in answers[:5]] == [200] * 5
    error = assert_error(answers[5], 400, 130429)
    assert error["error_data"]["details"]


async def test_throttle_next_fault_answers_130429(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_faults(throttle_next=2)
    codes = [(await client.post(URL, json=text_send(), headers=AUTH)).status_code for _ in range(3)]
    assert codes == [400, 400, 200]


async def test_pair_rate_answers_131056() -> None:
    sim = Simulator(make_config(pair_rate_burst=3, pair_rate_per_seconds=6, callback_url=None))
    seed(sim)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as client:
        answers = [await client.post(URL, json=text_send(), headers=AUTH) for _ in range(4)]
        other = await client.post(URL, json=text_send(to="6281100000099"), headers=AUTH)
    await sim.stop()
    assert [a.status_code for a in answers[:3]] == [200] * 3
    assert_error(answers[3], 400, 131056)
    assert other.status_code == 200  # another customer is not affected


async def test_5xx_fault_and_latency(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_faults(error_rate_5xx=1.0)
    error = assert_error(await client.post(URL, json=text_send(), headers=AUTH), 500, 2)
    assert error["is_transient"] is True
    assert sim.sent_messages == []
    sim.set_faults(error_rate_5xx=0.0, latency_ms=30)
    response = await client.post(URL, json=text_send(), headers=AUTH)
    assert response.status_code == 200
    assert sim.requests[-1]["duration_ms"] >= 25


async def test_timeout_fault_accepts_but_answers_too_late(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.set_faults(timeout_rate=1.0, timeout_seconds=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            client.post(URL, json=text_send(biz_opaque_callback_data="lost-1"), headers=AUTH), 0.2
        )
    # The send was accepted: the product reconciles it from its status webhooks (callback data echo).
    assert [m["biz_opaque_callback_data"] for m in sim.sent_messages] == ["lost-1"]


async def test_requests_are_recorded_without_the_token(client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.post(URL, json=text_send(), headers=AUTH)
    record = sim.requests[-1]
    assert record["method"] == "POST"
    assert record["path"] == URL
    assert record["headers"]["authorization"] == "Bearer <redacted>"
    assert TOKEN not in str(record)
    assert record["body"]["text"] == {"body": "Halo Budi"}
    assert record["status"] == 200
    assert record["response"]["messages"][0]["id"].startswith("wamid.")
