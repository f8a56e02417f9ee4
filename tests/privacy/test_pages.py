"""The contact page's "Export data" and "Erase contact", and the settings page's "Data retention" card."""

from __future__ import annotations

import zipfile
from io import BytesIO

import httpx
from sqlalchemy import select

from layanify.contacts.models import Contact
from layanify.db.session import Sessionmaker, unit_of_work
from tests.conftest import Tenant, WebhookPoster
from tests.privacy.conftest import BUDI
from tests.web.test_pages import as_agent, as_owner


async def budi_id(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(Contact.id).where(Contact.wa_id == BUDI))).scalar_one())


async def test_an_owner_downloads_and_erases_a_contact_from_its_page(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("text")
    contact_id = await budi_id(sessionmaker)
    headers = await as_owner(client, tenant)
    page = await client.get(f"/contacts/{contact_id}")
    assert f'href="/api/v1/contacts/{contact_id}/export"' in page.text
    assert f'hx-delete="/contacts/{contact_id}"' in page.text
    assert "hx-confirm=" in page.text
    download = await client.get(f"/api/v1/contacts/{contact_id}/export")  # the link, with the session
    assert download.status_code == 200
    assert "contact.json" in zipfile.ZipFile(BytesIO(download.content)).namelist()

    erased = await client.delete(f"/contacts/{contact_id}", headers=headers)
    assert erased.status_code == 204
    assert erased.headers["HX-Redirect"] == "/contacts"
    assert (await client.get(f"/contacts/{contact_id}")).status_code == 404


async def test_agents_see_neither_button_and_cannot_erase(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("text")
    contact_id = await budi_id(sessionmaker)
    headers = await as_agent(client, sessionmaker)
    page = await client.get(f"/contacts/{contact_id}")
    assert "Export data" not in page.text
    assert "Erase contact" not in page.text
    plain = {"X-CSRF-Token": headers["X-CSRF-Token"]}  # without htmx: the refusal's own status
    assert (await client.delete(f"/contacts/{contact_id}", headers=plain)).status_code == 403
    assert (await client.get(f"/contacts/{contact_id}")).status_code == 200


async def test_the_retention_card_saves_days_and_keeps_forever_when_empty(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_owner(client, tenant)
    page = await client.get("/settings")
    assert "Data retention" in page.text
    assert "No purge has run yet." in page.text
    form = {"messages_days": "365", "media_days": "", "webhook_events_days": "30"}
    saved = await client.put("/settings/retention", data=form, headers=headers)
    assert saved.status_code == 200
    assert "Saved." in saved.text
    assert 'value="365"' in saved.text
    policy = (await client.get("/api/v1/retention", headers=tenant.headers)).json()
    assert (policy["messages_days"], policy["media_days"], policy["webhook_events_days"]) == (365, None, 30)

    wrong = await client.put("/settings/retention", data=form | {"media_days": "-3"}, headers=headers)
    assert "Nothing was saved." in wrong.text
    assert 'value="-3"' in wrong.text
    assert (await client.get("/api/v1/retention", headers=tenant.headers)).json()["media_days"] is None


async def test_agents_see_the_retention_card_read_only(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    headers = await as_agent(client, sessionmaker)
    page = await client.get("/settings")
    assert "Data retention" in page.text
    assert "Save retention" not in page.text
    plain = {"X-CSRF-Token": headers["X-CSRF-Token"]}
    refused = await client.put("/settings/retention", data={"messages_days": "1"}, headers=plain)
    assert refused.status_code == 403
    assert (await client.get("/api/v1/retention", headers=tenant.headers)).json()["messages_days"] is None
