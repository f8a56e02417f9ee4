"""The inbox in a real browser: logging in, live updates, replying, failures, the 24-hour window,
escaping, workspace isolation and the phone layout.

Each journey uses its own simulated customer (the simulator lives for the whole package) and marks
the page (`window.__same_page`) where "without reload" matters: a navigation would lose the mark.
"""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from playwright.async_api import Page, expect

from layanify.db.session import Sessionmaker
from layanify.messaging.models import Message
from tests import factories
from tests.browser.conftest import (
    PHONE,
    OpenPage,
    Screenshot,
    Stack,
    conversation_with,
    customer_writes,
    go_live,
    log_in,
    post_webhook,
)
from tests.conftest import Tenant

pytestmark = pytest.mark.e2e


async def mark_page(page: Page) -> None:
    """Remember this document: a reload or navigation forgets the mark."""
    await page.evaluate("window.__same_page = true")


async def still_same_page(page: Page) -> None:
    assert await page.evaluate("window.__same_page === true"), "the page was reloaded"


async def test_login_rejects_a_wrong_password_and_accepts_the_right_one(
    open_page: OpenPage, tenant: Tenant
) -> None:
    page = await open_page(None)
    await log_in(page, tenant.email, "not the password")
    await expect(page.locator("form .error[role=alert]")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/login"))

    await log_in(page, tenant.email, tenant.password)
    await expect(page).to_have_url(re.compile(r"/inbox$"))
    await expect(page.locator("ul#conversation-list")).to_be_visible()


async def test_a_customer_message_appears_in_the_open_inbox_live(
    open_page: OpenPage, tenant: Tenant, sim: httpx.AsyncClient
) -> None:
    page = await open_page(tenant)
    await go_live(page, "/inbox")
    await expect(page.locator("ul#conversation-list")).to_be_visible()
    await mark_page(page)

    await customer_writes(sim, "6281200000002", "Rina Live", "Kak, stok kaos hitam masih ada?")

    item = page.locator("ul#conversation-list li[data-conversation]", has_text="Rina Live")
    await expect(item).to_be_visible()
    await expect(item).to_contain_text("stok kaos hitam")
    await still_same_page(page)


async def test_a_reply_is_sent_and_its_ticks_reach_read_live(
    open_page: OpenPage,
    tenant: Tenant,
    sim: httpx.AsyncClient,
    api: httpx.AsyncClient,
    screenshot: Screenshot,
) -> None:
    await customer_writes(sim, "6281200000003", "Budi Reply", "Halo, pesanan saya sudah dikirim?")
    conversation = await conversation_with(api, "6281200000003")
    page = await open_page(tenant)
    async with page.expect_response(lambda response: "/api/v1/events" in response.url):
        await page.click(f"li[data-conversation='{conversation['id']}'] a")
    await expect(page).to_have_url(re.compile(rf"/inbox/{conversation['id']}"))
    await expect(page.locator("article.bubble.in", has_text="sudah dikirim")).to_be_visible()
    await mark_page(page)

    await page.fill("form#composer textarea[name=text]", "Sudah kak, resinya JNE123")
    await page.click("form#composer button[type=submit]")

    bubble = page.locator("article.bubble.out", has_text="resinya JNE123")
    await expect(bubble).to_be_visible()
    await expect(bubble.locator("[data-ticks=read]")).to_be_visible()
    await expect(bubble).to_have_attribute("data-status", "read")
    await expect(page.locator("form#composer textarea[name=text]")).to_have_value("")
    await still_same_page(page)
    await screenshot(page, "inbox-conversation")


async def test_a_message_to_an_undeliverable_customer_shows_why_it_failed(
    open_page: OpenPage,
    tenant: Tenant,
    sim: httpx.AsyncClient,
    api: httpx.AsyncClient,
    screenshot: Screenshot,
) -> None:
    wa_id = "6281200000004"
    await customer_writes(sim, wa_id, "Mati Nomor", "Halo", undeliverable=True)
    conversation = await conversation_with(api, wa_id)
    page = await open_page(tenant)
    await go_live(page, f"/inbox/{conversation['id']}")
    await mark_page(page)

    await page.fill("form#composer textarea[name=text]", "Pesanan Anda sudah kami proses")
    await page.click("form#composer button[type=submit]")

    bubble = page.locator("article.bubble.out", has_text="sudah kami proses")
    await expect(bubble).to_have_attribute("data-status", "failed")
    failure = bubble.locator(".failure")
    await expect(failure).to_be_visible()
    await expect(failure).to_contain_text("131026")
    await expect(failure.locator(".action")).to_contain_text("What to do")
    await still_same_page(page)
    await screenshot(page, "failed-message")


async def test_a_closed_window_offers_only_templates(
    open_page: OpenPage,
    tenant: Tenant,
    stack: Stack,
    api: httpx.AsyncClient,
    screenshot: Screenshot,
) -> None:
    wa_id = "6281200000005"
    two_days_ago = int(time.time()) - 2 * 24 * 3600
    await post_webhook(
        stack,
        factories.text_message(
            f"wamid.browser-{uuid.uuid4().hex}",
            "Kemarin lusa saya tanya",
            wa_id=wa_id,
            name="Siti Lama",
            timestamp=two_days_ago,
        ),
    )
    conversation = await conversation_with(api, wa_id)
    assert conversation["window_open"] is False

    page = await open_page(tenant)
    await page.goto(f"/inbox/{conversation['id']}")
    composer = page.locator("form#composer")
    await expect(composer.locator(".window-closed")).to_be_visible()
    await expect(composer.locator("textarea[name=text]")).to_have_count(0)
    picker = composer.locator("#template-picker select[name=name]")
    await expect(picker).to_be_visible()
    await expect(picker.locator("option[value^='hello_world|']")).to_have_count(1)
    await screenshot(page, "closed-window-composer")


async def test_changed_behaviour_settings_are_saved(
    open_page: OpenPage, tenant: Tenant, api: httpx.AsyncClient, screenshot: Screenshot
) -> None:
    page = await open_page(tenant)
    response = await page.goto("/settings")
    assert response is not None
    assert response.status == 200, "GET /settings did not answer 200"
    form = page.locator(f"form#behaviour-{tenant.number_id}")
    await form.locator("input[name=reply_delay_seconds]").fill("7")
    await form.locator("select[name=read_receipts]").select_option("never")
    await form.locator("button[type=submit]").click()
    await expect(page.locator(f"form#behaviour-{tenant.number_id} .notice[role=status]")).to_be_visible()

    await page.reload()
    form = page.locator(f"form#behaviour-{tenant.number_id}")
    await expect(form.locator("input[name=reply_delay_seconds]")).to_have_value("7")
    await expect(form.locator("select[name=read_receipts]")).to_have_value("never")
    saved = (await api.get(f"/api/v1/numbers/{tenant.number_id}/settings")).json()
    assert saved["reply_delay_seconds"] == 7
    assert saved["read_receipts"] == "never"
    await screenshot(page, "settings")


async def test_markup_in_a_message_is_shown_as_text(
    open_page: OpenPage, tenant: Tenant, sim: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wa_id = "6281200000007"
    payload = "<img src=x onerror=\"document.title='pwned'\">"
    await customer_writes(sim, wa_id, "Iseng", "Halo")
    conversation = await conversation_with(api, wa_id)
    page = await open_page(tenant)
    await go_live(page, f"/inbox/{conversation['id']}")
    title = await page.title()

    # Arrives live (swapped in by htmx), then once more on a fresh load of the page.
    await sim.post(f"/_sim/customers/{wa_id}/messages", json={"type": "text", "text": payload})
    for _ in range(2):
        bubble = page.locator("article.bubble.in", has_text="onerror")
        await expect(bubble).to_be_visible()
        await expect(bubble.locator(".text")).to_have_text(payload)
        await expect(bubble.locator("img")).to_have_count(0)
        assert await page.title() == title
        await expect(page.locator("ul#conversation-list")).to_contain_text("<img src=x")
        await expect(page.locator("ul#conversation-list img")).to_have_count(0)
        await page.reload()
    assert await page.title() == title


async def test_another_workspaces_conversation_is_not_found(
    open_page: OpenPage, tenant: Tenant, other_tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    secret = "Rahasia dapur Toko Budi"
    theirs = await factories.create_outbound_message(sessionmaker, tenant, wamid=None, text=secret)

    async with sessionmaker() as session:
        message = await session.get(Message, theirs)
        assert message is not None
        target = message.conversation_id
    page = await open_page(other_tenant)
    response = await page.goto(f"/inbox/{target}")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("body")).not_to_contain_text(secret)
    await expect(page.locator("ul#conversation-list li[data-conversation]")).to_have_count(0)


async def test_the_inbox_and_a_conversation_work_at_phone_width(
    open_page: OpenPage,
    tenant: Tenant,
    sim: httpx.AsyncClient,
    api: httpx.AsyncClient,
    screenshot: Screenshot,
) -> None:
    wa_id = "6281200000009"
    await customer_writes(sim, wa_id, "Dewi Ponsel", "Kak, bisa COD?")
    conversation = await conversation_with(api, wa_id)
    page = await open_page(tenant, viewport=PHONE)

    item = page.locator(f"li[data-conversation='{conversation['id']}'] a")
    await expect(item).to_be_visible()
    await item.click()
    await expect(page).to_have_url(re.compile(rf"/inbox/{conversation['id']}"))
    await expect(page.locator(".list-pane")).to_be_hidden()
    await expect(page.locator("article.bubble.in", has_text="bisa COD")).to_be_visible()
    await screenshot(page, "phone-conversation")
    # Typing and sending work by touch: clicks fail when something (e.g. the navigation) covers them.
    textarea = page.locator("form#composer textarea[name=text]")
    await textarea.click()
    await textarea.fill("Bisa kak, COD se-Jabodetabek")
    await page.locator("form#composer button[type=submit]").click()
    await expect(page.locator("article.bubble.out", has_text="COD se-Jabodetabek")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        "the conversation scrolls sideways at phone width"
    )

    back = page.locator("a.back")
    await expect(back).to_be_visible()
    await back.click()
    await expect(page).to_have_url(re.compile(r"/inbox$"))
    await expect(page.locator("ul#conversation-list")).to_be_visible()
    await expect(page.locator(f"li[data-conversation='{conversation['id']}']")).to_be_visible()
