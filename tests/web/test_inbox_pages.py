"""The inbox pages through HTTP: list, conversation with every content type, composer, panel actions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests import factories
from tests.conftest import Tenant, WebhookPoster, fixture

EVERY_TYPE = [
    "text", "image", "video", "audio_voice", "document", "sticker", "location", "contacts",
    "interactive_button_reply", "interactive_list_reply", "button", "reaction", "order",
    "text_reply_context", "unsupported", "system_user_changed_number",
]  # fmt: skip


async def login(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/login", data={"email": tenant.email, "password": tenant.password})
    assert response.status_code == 303
    page = await client.get("/inbox", headers={"Accept-Language": "en"})
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page.text)
    assert found
    return found.group(1)


async def first_conversation(client: httpx.AsyncClient, tenant: Tenant) -> int:
    data = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    return int(data[0]["id"])


async def test_every_content_type_renders_in_the_conversation(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver(*EVERY_TYPE)
    text_wamid = fixture("text")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    reaction = fixture("reaction")
    message = reaction["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["reaction"]["message_id"] = "wamid.reaction-to-text", text_wamid
    await webhook.deliver(reaction)
    await login(client, tenant)
    conversation_id = await first_conversation(client, tenant)
    page = await client.get(f"/inbox/{conversation_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert html.count('class="bubble') >= 10
    for expected in ("📍", "👤", "☑", "📄", "Voice message", "did not deliver this content"):
        assert expected in html, expected
    assert 'class="reactions"' in html, "the reaction sits on the message it reacts to"
    assert 'class="quote"' in html, "the reply quotes its original"


async def test_a_customers_html_is_shown_as_text(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    attack = '<img src=x onerror="document.title=1"><script>alert(1)</script>'
    await webhook.deliver(factories.text_message("wamid.xss", attack, name="<b>Budi</b>"))
    await login(client, tenant)
    conversation_id = await first_conversation(client, tenant)
    for path in ("/inbox", f"/inbox/{conversation_id}"):
        html = (await client.get(path)).text
        assert "<img src=x" not in html
        assert "<script>alert" not in html
        assert "<b>Budi</b>" not in html
    assert "&lt;img src=x onerror=" in html


async def test_another_workspaces_conversation_is_not_found(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver("text")
    conversation_id = await first_conversation(client, tenant)
    await login(client, other_tenant)
    response = await client.get(f"/inbox/{conversation_id}")
    assert response.status_code == 404
    assert "Budi" not in response.text
    live = await client.get(f"/inbox/{conversation_id}/live")
    assert live.status_code == 404


async def test_an_agent_replies_assigns_closes_and_reopens(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    now = int(datetime.now(UTC).timestamp())
    await webhook.deliver(factories.text_message("wamid.open", "Halo kak", timestamp=now))
    token = await login(client, tenant)
    headers = {"X-CSRF-Token": token, "HX-Request": "true", "Accept-Language": "en"}
    conversation_id = await first_conversation(client, tenant)
    sent = await client.post(
        f"/inbox/{conversation_id}/send", data={"text": "Halo, ada yang bisa dibantu?"}, headers=headers
    )
    assert sent.status_code == 200
    assert 'id="composer"' in sent.text
    assert f"lay-conversation-{conversation_id}" in sent.headers["HX-Trigger"]
    messages = (
        await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers)
    ).json()
    assert messages["data"][-1]["content"]["text"] == "Halo, ada yang bisa dibantu?"
    assert messages["data"][-1]["status"] == "queued"

    assigned = await client.post(
        f"/inbox/{conversation_id}/state",
        data={"action": "assign", "user_id": str(tenant.user_id)},
        headers=headers,
    )
    assert assigned.status_code == 200
    closed = await client.post(f"/inbox/{conversation_id}/state", data={"action": "close"}, headers=headers)
    assert "Reopen" in closed.text
    shown = (await client.get(f"/api/v1/conversations/{conversation_id}", headers=tenant.headers)).json()
    assert shown["status"] == "closed"
    assert shown["assigned_user_id"] == tenant.user_id
    mine = await client.get("/inbox?filter=mine")
    assert f'data-conversation="{conversation_id}"' in mine.text
    await client.post(f"/inbox/{conversation_id}/state", data={"action": "reopen"}, headers=headers)
    shown = (await client.get(f"/api/v1/conversations/{conversation_id}", headers=tenant.headers)).json()
    assert shown["status"] == "open"


async def test_an_empty_message_gets_a_clear_error_and_nothing_is_queued(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    now = int(datetime.now(UTC).timestamp())
    await webhook.deliver(factories.text_message("wamid.e", "Halo", timestamp=now))
    token = await login(client, tenant)
    conversation_id = await first_conversation(client, tenant)
    response = await client.post(
        f"/inbox/{conversation_id}/send",
        data={"text": "   "},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert 'class="error"' in response.text
    messages = (
        await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=tenant.headers)
    ).json()
    assert [m["direction"] for m in messages["data"]] == ["inbound"]


async def test_a_closed_window_offers_only_templates(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    old = int((datetime.now(UTC) - timedelta(days=2)).timestamp())
    await webhook.deliver(factories.text_message("wamid.old", "Halo", timestamp=old))
    await login(client, tenant)
    conversation_id = await first_conversation(client, tenant)
    page = await client.get(f"/inbox/{conversation_id}", headers={"Accept-Language": "en"})
    assert "More than 24 hours have passed" in page.text
    assert 'name="text"' not in page.text
    assert 'id="template-picker"' in page.text


async def test_notes_and_tags_are_saved_from_the_panel(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver("text")
    token = await login(client, tenant)
    conversation_id = await first_conversation(client, tenant)
    response = await client.post(
        f"/inbox/{conversation_id}/contact",
        data={"notes": "Pelanggan setia", "tags": "vip, Jakarta, vip", "display_name": "Pak Budi"},
        headers={"X-CSRF-Token": token, "HX-Request": "true", "Accept-Language": "en"},
    )
    assert "Saved." in response.text
    contact = (
        await client.get("/api/v1/conversations/" + str(conversation_id), headers=tenant.headers)
    ).json()["contact"]
    assert contact["display_name"] == "Pak Budi"
    assert contact["tags"] == ["vip", "Jakarta"]


async def test_the_list_searches_by_text_and_by_number_typed_any_way(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver(
        factories.text_message("wamid.s1", "kaos hitam", wa_id="6281111111111", name="Andi"),
        factories.text_message("wamid.s2", "celana", wa_id="6282222222222", name="Dewi"),
    )
    await login(client, tenant)
    found = await client.get("/inbox/list?q=hitam", headers={"HX-Request": "true"})
    assert "Andi" in found.text
    assert "Dewi" not in found.text
    by_number = await client.get("/inbox/list?q=%2B62 822-2222", headers={"HX-Request": "true"})
    assert "Dewi" in by_number.text
