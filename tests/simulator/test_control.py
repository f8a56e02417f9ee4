"""Control API, Graph objects (number, WABA lists, templates, subscribed apps, media) and the phone page."""

from __future__ import annotations

import httpx

from layanify.simulator import Simulator, SimulatorConfig
from tests.simulator.conftest import AUTH, BUDI, PNID, WABA, Hooks, text_send

URL = f"/v23.0/{PNID}/messages"


async def test_health_and_scripting_a_customer(
    client: httpx.AsyncClient, sim: Simulator, hooks: Hooks
) -> None:
    assert (await client.get("/_sim/health")).json()["status"] == "ok"
    added = await client.post("/_sim/customers", json={"wa_id": "6281300000001", "name": "Rina"})
    assert added.status_code == 201
    said = await client.post("/_sim/customers/6281300000001/messages", json={"type": "text", "text": "Halo"})
    assert said.status_code == 201
    wamid = said.json()["id"]
    await sim.wait_idle(5)
    assert hooks.messages()[0]["id"] == wamid
    assert hooks.bodies()[0]["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] == "Rina"
    bad = await client.post("/_sim/customers/6281300000001/messages", json={"type": "hologram"})
    assert bad.status_code == 422


async def test_customer_read_and_conversation(client: httpx.AsyncClient, sim: Simulator) -> None:
    sim.config.auto_read = False
    await client.post("/_sim/customers/" + BUDI + "/messages", json={"type": "text", "text": "Halo"})
    sent = await client.post(URL, json=text_send(body="Halo juga"), headers=AUTH)
    wamid = sent.json()["messages"][0]["id"]
    await sim.wait_idle(5)
    conversation = (await client.get(f"/_sim/customers/{BUDI}/conversation")).json()
    assert [(m["direction"], m["text"]) for m in conversation["messages"]] == [
        ("in", "Halo"),
        ("out", "Halo juga"),
    ]
    assert conversation["messages"][1]["status"] == "delivered"
    assert conversation["window_open"] is True
    read = await client.post(f"/_sim/customers/{BUDI}/read", json={})
    assert read.json() == {"read": [wamid]}
    await sim.wait_idle(5)
    conversation = (await client.get(f"/_sim/customers/{BUDI}/conversation")).json()
    assert conversation["messages"][1]["status"] == "read"


async def test_requests_sent_webhooks_and_clearing(client: httpx.AsyncClient, sim: Simulator) -> None:
    await client.post(URL, json=text_send(biz_opaque_callback_data="x1"), headers=AUTH)
    await sim.wait_idle(5)
    requests = (await client.get("/_sim/requests", params={"path": "/messages"})).json()
    assert len(requests) == 1
    assert requests[0]["headers"]["authorization"] == "Bearer <redacted>"
    sent = (await client.get("/_sim/sent")).json()
    assert sent[0]["biz_opaque_callback_data"] == "x1"
    assert sent[0]["status"] == "read"
    webhooks = (await client.get("/_sim/webhooks")).json()
    assert len(webhooks) == 3
    assert all(w["ok"] and w["attempt"] == 1 for w in webhooks)
    assert (await client.delete("/_sim/requests")).status_code == 204
    assert (await client.get("/_sim/requests")).json() == []


async def test_faults_numbers_tokens_templates(client: httpx.AsyncClient, sim: Simulator) -> None:
    faults = (await client.put("/_sim/faults", json={"latency_ms": 1, "reorder": True})).json()
    assert faults["latency_ms"] == 1
    assert faults["reorder"] is True
    assert (await client.get("/_sim/faults")).json() == faults
    assert (await client.put("/_sim/faults", json={"nonsense": 1})).status_code == 422
    number = {
        "phone_number_id": "200000000000002",
        "waba_id": "300000000000002",
        "token": "t2",
        "display_phone_number": "15550000002",
    }
    assert (await client.post("/_sim/numbers", json=number)).status_code == 201
    template = {"waba_id": "300000000000002", "name": "promo", "language": "id", "body_params": 1}
    assert (await client.post("/_sim/templates", json=template)).status_code == 201
    listing = await client.get(
        "/v23.0/300000000000002/message_templates", headers={"Authorization": "Bearer t2"}
    )
    assert [t["name"] for t in listing.json()["data"]] == ["promo"]
    assert (await client.post("/_sim/tokens/revoke", json={"token": "t2"})).status_code == 200
    revoked = await client.get("/v23.0/200000000000002", headers={"Authorization": "Bearer t2"})
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == 190


async def test_phone_number_fields(client: httpx.AsyncClient) -> None:
    default = (await client.get(f"/v23.0/{PNID}", headers=AUTH)).json()
    assert {"verified_name", "display_phone_number", "quality_rating", "throughput", "id"} <= set(default)
    assert default["throughput"] == {"level": "STANDARD"}
    assert default["id"] == PNID
    chosen = await client.get(f"/v23.0/{PNID}", params={"fields": "verified_name,name_status"}, headers=AUTH)
    assert chosen.json() == {"verified_name": "Layanify Demo", "name_status": "APPROVED", "id": PNID}
    unknown = await client.get(f"/v23.0/{PNID}", params={"fields": "colour"}, headers=AUTH)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == 100


async def test_waba_phone_numbers_templates_paging_and_subscriptions(client: httpx.AsyncClient) -> None:
    numbers = (await client.get(f"/v23.0/{WABA}/phone_numbers", headers=AUTH)).json()
    assert [n["id"] for n in numbers["data"]] == [PNID]
    assert "cursors" in numbers["paging"]
    first = (await client.get(f"/v23.0/{WABA}/message_templates", params={"limit": 2}, headers=AUTH)).json()
    assert [t["name"] for t in first["data"]] == ["hello_world", "order_update"]
    assert first["data"][1]["components"][-1]["type"] == "BODY"
    assert first["data"][1]["status"] == "APPROVED"
    assert "next" in first["paging"]
    after = first["paging"]["cursors"]["after"]
    second = (
        await client.get(
            f"/v23.0/{WABA}/message_templates", params={"limit": 2, "after": after}, headers=AUTH
        )
    ).json()
    assert [t["name"] for t in second["data"]] == ["invoice"]
    assert "next" not in second["paging"]
    apps = (await client.get(f"/v23.0/{WABA}/subscribed_apps", headers=AUTH)).json()
    assert apps["data"][0]["whatsapp_business_api_data"]["name"]
    assert (await client.delete(f"/v23.0/{WABA}/subscribed_apps", headers=AUTH)).json() == {"success": True}
    assert (await client.get(f"/v23.0/{WABA}/subscribed_apps", headers=AUTH)).json() == {"data": []}
    assert (await client.post(f"/v23.0/{WABA}/subscribed_apps", headers=AUTH)).json() == {"success": True}


async def test_media_upload_retrieve_download_delete(client: httpx.AsyncClient) -> None:
    missing = await client.post(f"/v23.0/{PNID}/media", headers=AUTH, data={"messaging_product": "whatsapp"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == 100
    upload = await client.post(
        f"/v23.0/{PNID}/media",
        headers=AUTH,
        data={"messaging_product": "whatsapp", "type": "application/pdf"},
        files={"file": ("a.pdf", b"%PDF-1.4 x", "application/pdf")},
    )
    media_id = upload.json()["id"]
    info = (await client.get(f"/v23.0/{media_id}", headers=AUTH)).json()
    assert info["mime_type"] == "application/pdf"
    assert info["file_size"] == 10
    assert len(info["sha256"]) == 64
    assert (await client.get(info["url"], headers=AUTH)).content == b"%PDF-1.4 x"
    assert (await client.delete(f"/v23.0/{media_id}", headers=AUTH)).json() == {"success": True}
    gone = await client.get(f"/v23.0/{media_id}", headers=AUTH)
    assert gone.status_code == 400
    assert gone.json()["error"]["error_subcode"] == 33


async def test_phone_page_renders(client: httpx.AsyncClient, sim: Simulator) -> None:
    await sim.customer_sends(BUDI, {"type": "text", "text": "Halo <b>kak</b>"})
    await client.post(URL, json=text_send(body="Siap"), headers=AUTH)
    await sim.wait_idle(5)
    page = await client.get("/_sim/phones")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Budi Santoso" in page.text
    assert "Siti Rahma" in page.text
    assert "Halo &lt;b&gt;kak&lt;/b&gt;" in page.text
    assert "Siap" in page.text
    assert "setInterval" in page.text
    assert "/conversation" in page.text


async def test_lifespan_starts_and_stops_without_hanging() -> None:
    from asgi_lifespan import LifespanManager

    sim = Simulator(SimulatorConfig(callback_url=None))
    async with LifespanManager(sim.app):
        assert sim.emitter.running
    assert not sim.emitter.running


def test_config_from_env() -> None:
    config = SimulatorConfig.from_env(
        {
            "LAYANIFY_SIMULATOR_LATENCY_MS": "50",
            "LAYANIFY_SIMULATOR_REORDER": "true",
            "LAYANIFY_SIMULATOR_STATUS_DELAYS": "0,0.1,0.2",
            "LAYANIFY_SIMULATOR_CALLBACK_URL": "http://x/y",
        }
    )
    assert config.latency_ms == 50
    assert config.reorder is True
    assert config.status_delays == (0.0, 0.1, 0.2)
    assert config.callback_url == "http://x/y"
