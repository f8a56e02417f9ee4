"""The settings, numbers, contacts and webhook log pages, used through HTTP like a browser with htmx."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from layanify.accounts.models import Role
from layanify.automation.models import NumberSettings
from layanify.automation.schemas import BehaviourSettings
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import WhatsAppNumber
from layanify.simulator import Simulator
from layanify.webhooks.models import WebhookEvent
from layanify.whatsapp.client import GraphClient
from tests import factories
from tests.conftest import VERIFY_TOKEN, Tenant, WebhookPoster
from tests.sending.conftest import TOKEN, sim, sim_config  # noqa: F401

HTMX = {"HX-Request": "true"}
XSS = "<img src=x onerror=alert(1)>"


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    """Log in through the form, in English; the headers htmx would send (CSRF token included)."""
    client.cookies.set("layanify_lang", "en")
    response = await client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    page = await client.get("/settings")
    assert page.status_code == 200
    found = re.search(r'hx-headers=\'\{"X-CSRF-Token": "([0-9a-f]{64})"\}\'', page.text)
    assert found, "the page carries its CSRF token for htmx"
    return {"X-CSRF-Token": found.group(1), **HTMX}


async def as_owner(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    return await login(client, tenant.email, tenant.password)


async def as_agent(client: httpx.AsyncClient, sessionmaker: Sessionmaker) -> dict[str, str]:
    await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    return await login(client, "agent@tokobudi.id", "agent password")


def behaviour_form(**changes: Any) -> dict[str, Any]:
    """A filled behaviour form as the browser posts it (repeated names are lists)."""
    form: dict[str, Any] = {
        "hours_enabled": "on",
        "timezone": "Asia/Makassar",
        "timezone_other": "",
        "mon_start": ["08:00", "13:00"],
        "mon_end": ["12:00", "17:00"],
        "tue_start": ["09:00", ""],
        "tue_end": ["17:00", ""],
        "fri_start": ["20:00", ""],
        "fri_end": ["02:00", ""],
        "sat_start": ["", ""],
        "sat_end": ["", ""],
        "wed_start": ["10:00", ""],
        "wed_end": ["11:00", ""],
        "wed_closed": "on",
        "thu_start": ["00:00", ""],
        "thu_end": ["00:00", ""],
        "sun_closed": "on",
        "holidays": "2026-12-25 Natal\n2026-08-17 Hari Kemerdekaan",
        "auto_enabled": "on",
        "greeting_enabled": "on",
        "greeting_type": "text",
        "greeting_text": "Halo! Terima kasih sudah menghubungi kami.",
        "away_enabled": "on",
        "away_type": "template",
        "away_template": "jam_tutup",
        "away_language": "id",
        "rule": ["k0", "nabc123"],
        "rule_k0_match": "contains",
        "rule_k0_keywords": "harga, price",
        "rule_k0_type": "text",
        "rule_k0_text": "Daftar harga: …",
        "rule_k0_priority": "100",
        "rule_k0_enabled": "on",
        "rule_nabc123_match": "regex",
        "rule_nabc123_keywords": r"\bresi\s*\d{6,}",
        "rule_nabc123_type": "text",
        "rule_nabc123_text": "Resi Anda kami cek.",
        "rule_nabc123_priority": "10",
        "cooldown_minutes": "60",
        "read_receipts": "on_arrival",
        "typing_indicator": "on",
        "reply_delay_seconds": "5",
    }
    form.update(changes)
    return form


class FormValues(HTMLParser):
    """What a browser would submit for the form with this id (text fields, checked boxes, selections)."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = found.get("id") == self.form_id
        if not self.inside or "disabled" in found:
            return
        name = found.get("name")
        if tag == "input" and name:
            if found.get("type") in ("checkbox", "radio") and "checked" not in found:
                return
            self.values.append((name, found.get("value", "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in found:
            self.values.append((self._select, found.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.values.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def form_values(html: str, form_id: str) -> dict[str, list[str]]:
    parser = FormValues(form_id)
    parser.feed(html)
    values: dict[str, list[str]] = {}
    for name, value in parser.values:
        values.setdefault(name, []).append(value)
    return values


async def stored_settings(sessionmaker: Sessionmaker, number_id: int) -> dict[str, Any] | None:
    async with unit_of_work(sessionmaker) as session:
        row = await session.get(NumberSettings, number_id)
        return dict(row.settings) if row is not None else None


# --- Settings --------------------------------------------------------------------------------------


async def test_the_settings_page_shows_each_number_and_how_to_set_up_the_webhook(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await as_owner(client, tenant)
    page = await client.get("/settings")
    assert page.status_code == 200
    text = page.text
    for expected in (
        "WhatsApp settings",
        "Toko Budi",
        tenant.phone_number_id,
        "Not tested yet",
        "Test connection",
        "API configuration",
        "Business hours",
        "Keyword rules",
        "Save behaviour",
        "Webhook setup",
        "http://testserver/api/webhooks/whatsapp",
        VERIFY_TOKEN,
        'data-copy="webhook-url"',
        "Verify and save",
        "subscribe to messages",
        "Asia/Jayapura",
    ):
        assert expected in text, expected
    token = TOKEN
    assert token not in text
    assert "…" + token[-4:] in text, "the token's last 4 characters are the placeholder"
    assert re.search(r'<input type="password" name="access_token" value=""', text)


async def test_behaviour_settings_are_saved_from_the_form_and_shown_back(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_owner(client, tenant)
    response = await client.put(
        f"/numbers/{tenant.number_id}/behaviour", data=behaviour_form(), headers=headers
    )
    assert response.status_code == 200
    assert "Saved." in response.text
    stored = await stored_settings(sessionmaker, tenant.number_id)
    assert stored is not None
    hours = stored["business_hours"]
    assert hours["enabled"] is True
    assert hours["timezone"] == "Asia/Makassar"
    assert hours["weekly"]["mon"] == [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
    assert hours["weekly"]["fri"] == [{"start": "20:00", "end": "02:00"}]
    assert hours["weekly"]["sat"] == hours["weekly"]["sun"] == []
    assert hours["weekly"]["thu"] == [{"start": "00:00", "end": "24:00"}], "an end of 00:00 is midnight"
    assert hours["weekly"]["wed"] == [], "closed all day, whatever times were left in the row"
    assert hours["holidays"] == [
        {"date": "2026-12-25", "name": "Natal"},
        {"date": "2026-08-17", "name": "Hari Kemerdekaan"},
    ]
    auto = stored["auto_reply"]
    assert auto["enabled"] is True
    assert auto["greeting"] == {
        "enabled": True,
        "reply": {"type": "text", "text": "Halo! Terima kasih sudah menghubungi kami.", "preview_url": False},
    }
    assert auto["away"]["reply"]["name"] == "jam_tutup"
    assert [r["keywords"] for r in auto["keywords"]] == [["harga", "price"], [r"\bresi\s*\d{6,}"]]
    assert [r["enabled"] for r in auto["keywords"]] == [True, False]
    assert auto["keywords"][1]["priority"] == 10
    assert auto["cooldown_minutes"] == 60
    assert stored["read_receipts"] == "on_arrival"
    assert stored["typing_indicator"] is True
    assert stored["reply_delay_seconds"] == 5
    # The form shows what was stored, and so does the page afterwards.
    assert 'value="Asia/Makassar" selected' in response.text
    assert "Hari Kemerdekaan" in response.text
    page = await client.get(f"/numbers/{tenant.number_id}")
    assert "jam_tutup" in page.text
    assert r"\bresi\s*\d{6,}" in page.text
    # Saving the page's own form again changes nothing.
    again = await client.put(
        f"/numbers/{tenant.number_id}/behaviour",
        data=form_values(page.text, f"behaviour-{tenant.number_id}"),
        headers=headers,
    )
    assert "Saved." in again.text
    assert await stored_settings(sessionmaker, tenant.number_id) == stored


async def test_saving_the_untouched_form_stores_the_defaults(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_owner(client, tenant)
    page = await client.get(f"/numbers/{tenant.number_id}")
    saved = await client.put(
        f"/numbers/{tenant.number_id}/behaviour",
        data=form_values(page.text, f"behaviour-{tenant.number_id}"),
        headers=headers,
    )
    assert "Saved." in saved.text
    assert await stored_settings(sessionmaker, tenant.number_id) == BehaviourSettings().model_dump(
        mode="json"
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"mon_start": ["08:00", "11:00"], "mon_end": ["12:00", "13:00"]}, "ranges overlap"),
        ({"rule_nabc123_keywords": "resi (\\d+"}, "is not a valid regular expression"),
        ({"timezone": "other", "timezone_other": "Mars/Olympus"}, "unknown timezone"),
        ({"typing_indicator": "on", "read_receipts": "never"}, "typing indicator"),
        ({"holidays": "2026-12-25 Natal\n2026-12-25 Natal lagi"}, "listed more than once"),
    ],
)
async def test_refused_behaviour_settings_show_the_problem_keep_the_form_and_save_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    changes: dict[str, Any],
    problem: str,
) -> None:
    headers = await as_owner(client, tenant)
    response = await client.put(
        f"/numbers/{tenant.number_id}/behaviour", data=behaviour_form(**changes), headers=headers
    )
    assert response.status_code == 200, "htmx swaps the form with the problem in"
    assert "Nothing was saved" in response.text
    assert problem in response.text
    assert "Saved." not in response.text
    assert "Resi Anda kami cek." in response.text, "what was typed is kept"
    assert await stored_settings(sessionmaker, tenant.number_id) is None


async def test_a_new_keyword_rule_row_can_be_added_and_a_row_removed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await as_owner(client, tenant)
    row = await client.get("/settings/keyword-rule", headers=HTMX)
    assert row.status_code == 200
    key = re.search(r'name="rule" value="([A-Za-z0-9]+)"', row.text)
    assert key
    assert f'name="rule_{key.group(1)}_keywords"' in row.text
    assert row.text.lstrip().startswith("<tr")
    removed = await client.get("/settings/removed", headers=HTMX)
    assert removed.status_code == 200
    assert removed.text == ""


# --- Numbers ---------------------------------------------------------------------------------------


async def test_the_access_token_is_never_sent_back(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_owner(client, tenant)
    new_token = "EAAGnewSecretToken1234567890WXYZ"
    refused = await client.put(
        f"/numbers/{tenant.number_id}",
        data={"access_token": new_token, "waba_id": "not-digits", "display_name": "Toko", "number": ""},
        headers=headers,
    )
    assert refused.status_code == 200
    assert "Nothing was saved" in refused.text
    assert "WhatsApp Business Account ID: Use digits only" in refused.text
    assert "paste it again" in refused.text
    assert new_token not in refused.text
    assert 'value="not-digits"' in refused.text, "what was typed is kept (but the token)"
    saved = await client.put(
        f"/numbers/{tenant.number_id}",
        data={
            "access_token": new_token,
            "waba_id": factories.FIXTURE_WABA_ID,
            "display_name": "Toko Budi Pusat",
            "number": "+1 555 078 3881",
            "rate_limit_per_second": "20",
        },
        headers=headers,
    )
    assert saved.status_code == 200
    assert "Saved." in saved.text
    assert new_token not in saved.text
    assert "…WXYZ" in saved.text
    assert 'hx-swap-oob="true"' in saved.text, "the status card follows (the new token is untested)"
    for path in ("/settings", f"/numbers/{tenant.number_id}", "/webhook-log", "/contacts"):
        page = await client.get(path)
        assert new_token not in page.text
        assert TOKEN not in page.text
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, tenant.number_id)
        assert number is not None
        assert number.display_name == "Toko Budi Pusat"
        assert number.rate_limit_per_second == 20
        assert number.token_last4 == "WXYZ"
        assert number.connection_state == "unknown"
    # Leaving the token empty keeps it.
    await client.put(
        f"/numbers/{tenant.number_id}",
        data={"access_token": "", "waba_id": factories.FIXTURE_WABA_ID, "display_name": "Toko", "number": ""},
        headers=headers,
    )
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, tenant.number_id)
        assert number is not None
        assert number.token_last4 == "WXYZ"


async def test_an_owner_adds_a_number_and_removes_it(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_owner(client, tenant)
    form = await client.get("/numbers/new")
    assert form.status_code == 200
    assert "Add a number" in form.text
    token = "EAAGaddedNumberToken987654321"
    refused = await client.post(
        "/numbers", data={"phone_number_id": "12", "access_token": token}, headers=headers
    )
    assert refused.status_code == 200
    assert "The number was not added." in refused.text
    assert token not in refused.text
    taken = await client.post(
        "/numbers", data={"phone_number_id": tenant.phone_number_id, "access_token": token}, headers=headers
    )
    assert "already connected" in taken.text
    added = await client.post(
        "/numbers",
        data={
            "phone_number_id": "333333333333333",
            "waba_id": "444444444444444",
            "access_token": token,
            "display_name": "Cabang Makassar",
            "rate_limit_per_second": "",
        },
        headers=headers,
    )
    assert added.status_code == 204
    target = added.headers["HX-Redirect"]
    number_id = int(target.rsplit("/", 1)[1])
    page = await client.get(target)
    assert page.status_code == 200
    assert "Cabang Makassar" in page.text
    assert token not in page.text
    removed = await client.delete(f"/numbers/{number_id}", headers=headers)
    assert removed.status_code == 204
    assert removed.headers["HX-Redirect"] == "/settings"
    assert "Cabang Makassar" not in (await client.get("/settings")).text
    assert (await client.get(f"/numbers/{number_id}")).status_code == 404
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, number_id)
        assert number is not None
        assert number.deleted_at is not None
        assert number.access_token_encrypted is None


async def test_testing_the_connection_shows_the_diagnosis_and_each_check(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant: Tenant,
    sim: tuple[Simulator, Any],  # noqa: F811
) -> None:
    simulator, _ = sim
    app.state.graph_client = GraphClient(
        base_url="http://sim.test",
        version="v23.0",
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app)),
    )
    headers = await as_owner(client, tenant)
    tested = await client.post(f"/numbers/{tenant.number_id}/test", headers=headers)
    assert tested.status_code == 200
    assert f'id="status-{tenant.number_id}"' in tested.text
    assert "Connected: the token works" in tested.text
    assert "✓ Phone number" in tested.text
    assert "✓ Webhooks" in tested.text
    simulator.revoke_token(TOKEN)
    again = await client.post(f"/numbers/{tenant.number_id}/test", headers=headers)
    assert "Invalid access token" in again.text
    assert "Disconnected" in again.text
    assert TOKEN not in again.text
    page = await client.get("/settings")
    assert "Invalid access token" in page.text, "the last error stays on the page with its fix"
    await app.state.graph_client.aclose()


async def test_agents_see_the_settings_read_only_and_cannot_change_them(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker, webhook: WebhookPoster
) -> None:
    await webhook.deliver(factories.text_message("wamid.A1", "halo"))
    headers = await as_agent(client, sessionmaker)
    page = await client.get("/settings")
    assert page.status_code == 200
    assert "Only a workspace owner can change these settings." in page.text
    assert "Save behaviour" not in page.text
    assert "Save API configuration" not in page.text
    assert "Add a number" not in page.text
    assert VERIFY_TOKEN not in page.text
    assert "Test connection" in page.text
    plain = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    for method, path, data in (
        ("PUT", f"/numbers/{tenant.number_id}/behaviour", behaviour_form()),
        ("PUT", f"/numbers/{tenant.number_id}", {"display_name": "Mine now"}),
        ("DELETE", f"/numbers/{tenant.number_id}", None),
        ("POST", "/numbers", {"phone_number_id": "555555555555", "access_token": "EAAGagentToken123"}),
    ):
        response = await client.request(method, path, data=data, headers=plain)
        assert response.status_code == 403, (method, path)
    assert (await client.get("/numbers/new")).status_code == 403
    assert await stored_settings(sessionmaker, tenant.number_id) is None
    log = await client.get("/webhook-log")
    assert log.status_code == 200
    event_id = re.search(r'href="/webhook-log/(\d+)"', log.text)
    assert event_id
    detail = await client.get(f"/webhook-log/{event_id.group(1)}")
    assert "Replay" not in detail.text
    replay = await client.post(f"/webhook-log/{event_id.group(1)}/replay", headers=plain)
    assert replay.status_code == 403


async def test_another_workspaces_number_contact_and_event_are_not_found(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
) -> None:
    await webhook.deliver(
        factories.text_message(
            "wamid.O1", "hi", wa_id="15551234567", phone_number_id=other_tenant.phone_number_id
        )
    )
    async with unit_of_work(sessionmaker) as session:
        contact = (await session.execute(select(Contact).where(Contact.wa_id == "15551234567"))).scalar_one()
        event = (await session.execute(select(WebhookEvent))).scalar_one()
        assert contact.workspace_id == event.workspace_id == other_tenant.workspace_id
    headers = await as_owner(client, tenant)
    plain = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    for path in (
        f"/numbers/{other_tenant.number_id}",
        f"/contacts/{contact.id}",
        f"/webhook-log/{event.id}",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "does not exist" in response.text
    for method, path, data in (
        ("PUT", f"/numbers/{other_tenant.number_id}/behaviour", behaviour_form()),
        ("PUT", f"/numbers/{other_tenant.number_id}", {"display_name": "Taken"}),
        ("POST", f"/numbers/{other_tenant.number_id}/test", None),
        ("DELETE", f"/numbers/{other_tenant.number_id}", None),
        ("PUT", f"/contacts/{contact.id}", {"notes": "mine"}),
        ("POST", f"/webhook-log/{event.id}/replay", None),
    ):
        response = await client.request(method, path, data=data, headers=plain)
        assert response.status_code == 404, (method, path)
    assert "15551234567" not in (await client.get("/contacts?q=1555")).text
    assert f'href="/webhook-log/{event.id}"' not in (await client.get("/webhook-log")).text
    assert "Other Co" not in (await client.get("/settings")).text
    async with unit_of_work(sessionmaker) as session:
        untouched = await session.get(WhatsAppNumber, other_tenant.number_id)
        assert untouched is not None
        assert untouched.deleted_at is None
        assert untouched.display_name == "Other Co"


async def test_a_change_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await as_owner(client, tenant)
    for method, path, data in (
        ("PUT", f"/numbers/{tenant.number_id}/behaviour", behaviour_form()),
        ("POST", f"/numbers/{tenant.number_id}/test", None),
        ("POST", "/numbers", {"phone_number_id": "555555555555", "access_token": "EAAGnoCsrfToken123"}),
        ("DELETE", f"/numbers/{tenant.number_id}", None),
    ):
        response = await client.request(method, path, data=data, headers=HTMX)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "csrf_failed"
    assert await stored_settings(sessionmaker, tenant.number_id) is None


# --- Contacts --------------------------------------------------------------------------------------


async def test_contacts_are_listed_searched_and_shown_with_their_conversations(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver(
        factories.text_message("wamid.C1", "halo", wa_id="6281234567890", name="Budi Santoso"),
        factories.text_message("wamid.C2", "permisi", wa_id="6289876543210", name="Siti Rahma"),
    )
    headers = await as_owner(client, tenant)
    listing = await client.get("/contacts")
    assert listing.status_code == 200
    assert "Budi Santoso" in listing.text
    assert "+6289876543210" in listing.text
    by_name = await client.get("/contacts", params={"q": "siti"})
    assert "Siti Rahma" in by_name.text
    assert "Budi Santoso" not in by_name.text
    by_number = await client.get("/contacts", params={"q": "0812-3456"})
    assert "Budi Santoso" in by_number.text
    assert "Siti Rahma" not in by_number.text
    assert "No contact matches" in (await client.get("/contacts", params={"q": "nobody"})).text
    async with unit_of_work(sessionmaker) as session:
        budi = (await session.execute(select(Contact).where(Contact.wa_id == "6281234567890"))).scalar_one()
        conversation = (
            await session.execute(select(Conversation).where(Conversation.contact_id == budi.id))
        ).scalar_one()
    page = await client.get(f"/contacts/{budi.id}")
    assert page.status_code == 200
    for expected in ("Budi Santoso", "+6281234567890", "WhatsApp profile name", "Conversations", "halo"):
        assert expected in page.text, expected
    assert f'href="/inbox/{conversation.id}"' in page.text
    saved = await client.put(
        f"/contacts/{budi.id}",
        data={"display_name": "Pak Budi", "tags": "vip, grosir", "notes": "Suka kirim pagi"},
        headers=headers,
    )
    assert saved.status_code == 200
    assert "Saved." in saved.text
    shown = await client.get(f"/contacts/{budi.id}")
    assert "Pak Budi" in shown.text
    assert "grosir" in shown.text
    assert "Suka kirim pagi" in shown.text
    too_many = await client.put(
        f"/contacts/{budi.id}", data={"tags": ", ".join(f"t{i}" for i in range(25))}, headers=headers
    )
    assert "Nothing was saved" in too_many.text
    assert "t24" in too_many.text, "what was typed is kept"


async def test_the_contact_list_loads_more_a_page_at_a_time(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    async with unit_of_work(sessionmaker) as session:
        for i in range(60):
            session.add(
                Contact(workspace_id=tenant.workspace_id, wa_id=f"62811000{i:03d}", profile_name=f"C{i:03d}")
            )
    await as_owner(client, tenant)
    first = await client.get("/contacts")
    assert "C000" in first.text
    assert "C049" in first.text
    assert "C050" not in first.text
    more = re.search(r'hx-get="(/contacts/rows\?cursor=[^"]+)"', first.text)
    assert more
    rest = await client.get(more.group(1).replace("&amp;", "&"), headers=HTMX)
    assert rest.status_code == 200
    assert "C050" in rest.text
    assert "C059" in rest.text
    assert "C049" not in rest.text
    assert "Load more" not in rest.text


async def test_html_in_a_contacts_name_is_shown_as_text(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver(factories.text_message("wamid.X1", XSS, name=XSS))
    async with unit_of_work(sessionmaker) as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        event = (await session.execute(select(WebhookEvent))).scalar_one()
    await as_owner(client, tenant)
    for path in ("/contacts", f"/contacts/{contact.id}", f"/webhook-log/{event.id}"):
        page = await client.get(path)
        assert page.status_code == 200
        assert XSS not in page.text, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text, path


async def test_the_pages_need_no_inline_script_or_style(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("text")
    async with unit_of_work(sessionmaker) as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        event = (await session.execute(select(WebhookEvent))).scalar_one()
    await as_owner(client, tenant)
    for path in (
        "/settings",
        f"/numbers/{tenant.number_id}",
        "/numbers/new",
        "/contacts",
        f"/contacts/{contact.id}",
        "/webhook-log",
        f"/webhook-log/{event.id}",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None, path
        assert " style=" not in page.text, path
        assert "hx-on" not in page.text, path
        assert " on" + "click=" not in page.text, path


# --- Webhook log -----------------------------------------------------------------------------------


async def test_the_webhook_log_lists_filters_shows_and_replays_events(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("text")
    headers = await as_owner(client, tenant)
    log = await client.get("/webhook-log")
    assert log.status_code == 200
    assert "<code>messages</code>" in log.text
    assert "Processed" in log.text
    assert "Messages stored: 1" in log.text
    assert "No events with this status." in (await client.get("/webhook-log?status=failed")).text
    assert "<code>messages</code>" in (await client.get("/webhook-log?status=processed")).text
    event_id = int(re.search(r'href="/webhook-log/(\d+)"', log.text).group(1))  # type: ignore[union-attr]
    detail = await client.get(f"/webhook-log/{event_id}")
    assert detail.status_code == 200
    assert "Body as received" in detail.text
    assert '<pre class="raw">{\n  &#34;object&#34;: &#34;whatsapp_business_account&#34;,' in detail.text
    assert "Replay" in detail.text
    replayed = await client.post(f"/webhook-log/{event_id}/replay", headers=headers)
    assert replayed.status_code == 200
    assert "Queued to be processed again" in replayed.text
    assert 'id="event-summary"' in replayed.text
    async with unit_of_work(sessionmaker) as session:
        event = await session.get(WebhookEvent, event_id)
        assert event is not None
        assert event.status == "pending"
    assert "<code>messages</code>" in (await client.get("/webhook-log?status=pending")).text
    await webhook.process()
    async with unit_of_work(sessionmaker) as session:
        assert len((await session.execute(select(Conversation))).scalars().all()) == 1


async def test_the_webhook_log_pages_older_events(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    for i in range(52):
        await webhook.post(factories.text_message(f"wamid.P{i}", f"pesan {i}"))
    await webhook.process()
    await as_owner(client, tenant)
    first = await client.get("/webhook-log")
    assert first.text.count('href="/webhook-log/') == 50
    more = re.search(r'hx-get="(/webhook-log/rows\?cursor=[^"]+)"', first.text)
    assert more
    rest = await client.get(more.group(1).replace("&amp;", "&"), headers=HTMX)
    assert rest.text.count('href="/webhook-log/') == 2
