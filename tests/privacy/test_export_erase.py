"""GDPR: an owner exports everything held about a customer, and erases it without a trace."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from layanify.audit.models import AuditEntry
from layanify.cli.main import app as cli
from layanify.config import get_settings
from layanify.contacts.models import Contact
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.storage import LocalStorage
from layanify.messaging.models import Message
from layanify.privacy import service as privacy
from layanify.webhooks.models import WebhookEvent
from tests import factories
from tests.conftest import Tenant, WebhookPoster
from tests.privacy.conftest import (
    BUDI,
    BUDI_USER_ID,
    OUTBOUND_WAMID,
    SITI,
    UNMATCHED_WAMID,
    arrange,
    rows_mentioning,
)

pytestmark = pytest.mark.usefixtures("clock")


async def _export(
    client: httpx.AsyncClient, tenant: Tenant, contact_id: int
) -> tuple[dict[str, Any], zipfile.ZipFile]:
    response = await client.get(f"/api/v1/contacts/{contact_id}/export", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="contact-{contact_id}-export.zip"'
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return json.loads(archive.read("contact.json")), archive


async def _budi_messages(sessionmaker: Sessionmaker, contact_id: int) -> list[Message]:
    from layanify.conversations.models import Conversation

    async with unit_of_work(sessionmaker) as session:
        conversations = select(Conversation.id).where(Conversation.contact_id == contact_id)
        rows = await session.execute(select(Message).where(Message.conversation_id.in_(conversations)))
        return list(rows.scalars())


async def test_the_export_holds_every_message_status_file_and_event_of_the_contact_only(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
) -> None:
    shop = await arrange(client, tenant, webhook, sessionmaker, media_dir)
    document, archive = await _export(client, tenant, shop.budi_id)

    assert document["contact"]["wa_id"] == BUDI
    assert document["contact"]["user_id"] == BUDI_USER_ID
    assert document["contact"]["marketing_opt_out"] is True
    expected = await _budi_messages(sessionmaker, shop.budi_id)
    assert sorted(m["id"] for m in document["messages"]) == sorted(m.id for m in expected)
    texts = json.dumps([m["content"] for m in document["messages"]], ensure_ascii=False)
    assert "Halo kak, pesanan saya sudah dikirim belum?" in texts
    assert "Bukti transfer pembayaran" in texts
    assert "Terima kasih sudah menghubungi" in texts  # the greeting the number sent
    sent = next(m for m in document["messages"] if m["wamid"] == OUTBOUND_WAMID)
    assert [s["status"] for s in sent["status_history"]] == ["delivered"]
    # Reports naming Budi that matched no message of ours: the batch's and one of an unknown wamid.
    unmatched = {s["wamid"] for s in document["unmatched_status_events"]}
    assert UNMATCHED_WAMID in unmatched
    assert len(unmatched) == 2
    assert document["conversations"]
    assert document["chat_actions"]
    assert document["auto_replies_sent"]

    # The bytes of its image and of the file the business sent it, by the path the JSON gives.
    paths = {f["archive_path"] for f in document["media_files"]}
    contents = {archive.read(p) for p in paths if p}
    assert {shop.budi_image, shop.budi_upload} <= contents
    assert shop.siti_image not in contents
    assert all(name.startswith("media/") for name in archive.namelist() if name != "contact.json")

    # The raw events about Budi, the batch included, without a word of Siti's.
    events = document["webhook_events"]
    # text, image, text with user id, the batch, two statuses and the marketing preference
    assert len(events) == 7
    assert SITI not in json.dumps(events)
    assert "Siti" not in json.dumps(events)
    assert "ongkirnya ke Surabaya" in json.dumps(events)  # Budi's own message in the batch

    async with unit_of_work(sessionmaker) as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.exported"))
        ).scalar_one()
    assert entry.target_id == str(shop.budi_id)
    assert entry.actor_user_id == tenant.user_id
    assert entry.details is not None
    assert entry.details["messages"] == len(expected)
    assert BUDI not in json.dumps(entry.details)


async def test_erasing_a_contact_leaves_no_row_or_file_about_them(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    engine: AsyncEngine,
    media_dir: Path,
) -> None:
    shop = await arrange(client, tenant, webhook, sessionmaker, media_dir)
    # The scan does see Budi before, sealed webhook bodies included.
    before = {table for table, _ in await rows_mentioning(engine, BUDI, BUDI_USER_ID)}
    assert {"contacts", "messages", "message_status_events", "webhook_events"} <= before, before
    siti_before = len(await _budi_messages(sessionmaker, shop.siti_id))

    refused = await client.delete(f"/api/v1/contacts/{shop.budi_id}", headers=tenant.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "confirm_required"
    response = await client.delete(f"/api/v1/contacts/{shop.budi_id}?confirm=true", headers=tenant.headers)
    assert response.status_code == 204, response.text

    assert await rows_mentioning(engine, BUDI, BUDI_USER_ID) == []
    assert not (media_dir / shop.budi_image_key).exists()
    assert not (media_dir / shop.budi_upload_key).exists()
    # What also concerns others stays: Siti, her messages and file, the upload sent to both.
    assert await LocalStorage(media_dir).read(shop.siti_image_key) == shop.siti_image
    assert (media_dir / shop.shared_upload_key).exists()
    assert len(await _budi_messages(sessionmaker, shop.siti_id)) == siti_before
    siti = await client.get(f"/api/v1/contacts/{shop.siti_id}", headers=tenant.headers)
    assert siti.status_code == 200
    assert (await client.get(f"/api/v1/contacts/{shop.budi_id}", headers=tenant.headers)).status_code == 404

    async with unit_of_work(sessionmaker) as session:
        bodies = [json.loads(body) for body in (await session.execute(select(WebhookEvent.body))).scalars()]
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "contact.erased"))
        ).scalar_one()
    # Only the batch is left, with Siti's messages and status and nothing of Budi's.
    assert len(bodies) == 1
    batch = json.dumps(bodies[0])
    assert "toko buka jam berapa" in batch
    assert "Ini foto produknya" in batch
    assert "ongkirnya" not in batch
    assert entry.target_type == "contact"
    assert entry.target_id == str(shop.budi_id)
    assert entry.details is not None
    assert entry.details["messages"] >= 6
    assert entry.details["webhook_events_deleted"] == 6
    assert entry.details["webhook_events_redacted"] == 1
    assert entry.details["media_files"] == 2
    assert all(isinstance(n, int) for n in entry.details.values())


async def test_another_workspace_cannot_export_or_erase_and_keeps_its_own_copy(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
) -> None:
    shop = await arrange(client, tenant, webhook, sessionmaker, media_dir)
    # Budi also writes to the other workspace's number.
    await webhook.deliver(
        factories.text_message(
            "wamid.other-workspace", "Halo toko lain", phone_number_id=other_tenant.phone_number_id
        )
    )
    url = f"/api/v1/contacts/{shop.budi_id}"
    assert (await client.get(url + "/export", headers=other_tenant.headers)).status_code == 404
    assert (await client.delete(url + "?confirm=true", headers=other_tenant.headers)).status_code == 404

    assert (await client.delete(url + "?confirm=true", headers=tenant.headers)).status_code == 204
    others = (await client.get("/api/v1/contacts", headers=other_tenant.headers)).json()["data"]
    assert [c["wa_id"] for c in others] == [BUDI]
    async with unit_of_work(sessionmaker) as session:
        kept = (
            await session.execute(
                select(func.count()).where(WebhookEvent.workspace_id == other_tenant.workspace_id)
            )
        ).scalar_one()
    assert kept == 1


async def test_only_owners_export_and_erase(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
) -> None:
    await webhook.deliver("text")
    contact_id = (await client.get("/api/v1/contacts", headers=tenant.headers)).json()["data"][0]["id"]
    agent = await factories.agent_headers(sessionmaker)
    assert (await client.get(f"/api/v1/contacts/{contact_id}/export", headers=agent)).status_code == 403
    assert (
        await client.delete(f"/api/v1/contacts/{contact_id}?confirm=true", headers=agent)
    ).status_code == 403


async def test_an_erasure_that_rolls_back_keeps_the_files(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
) -> None:
    shop = await arrange(client, tenant, webhook, sessionmaker, media_dir)

    class Interrupted(Exception):
        pass

    async def erase_then_fail() -> None:
        async with unit_of_work(sessionmaker) as session:
            await privacy.erase_contact(
                session,
                workspace_id=tenant.workspace_id,
                contact_id=shop.budi_id,
                actor_user_id=None,
                storage=LocalStorage(media_dir),
            )
            raise Interrupted

    with pytest.raises(Interrupted):
        await erase_then_fail()
    assert await LocalStorage(media_dir).read(shop.budi_image_key) == shop.budi_image
    async with unit_of_work(sessionmaker) as session:
        assert await session.get(Contact, shop.budi_id) is not None


async def test_the_cli_exports_and_erases_a_contact(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    database_url: str,
    media_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await arrange(client, tenant, webhook, sessionmaker, media_dir)
    for name, value in {
        "LAYANIFY_DATABASE_URL": database_url,
        "LAYANIFY_MEDIA_DIR": str(media_dir),
        "LAYANIFY_LOG_LEVEL": "WARNING",
        "LAYANIFY_ENCRYPTION_KEYS": factories.TEST_ENCRYPTION_KEYS,
    }.items():
        monkeypatch.setenv(name, value)

    async def invoke(*args: str) -> Result:
        get_settings.cache_clear()
        try:
            return await asyncio.to_thread(CliRunner().invoke, cli, ["privacy", *args])
        finally:
            get_settings.cache_clear()

    out = tmp_path / "budi.zip"
    exported = await invoke("export", "--contact-id", str(shop.budi_id), "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert f"wrote {out}" in exported.stdout
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("contact.json"))["contact"]["wa_id"] == BUDI
    unconfirmed = await invoke("erase", "--contact-id", str(shop.budi_id))
    assert unconfirmed.exit_code == 2
    assert "--yes" in unconfirmed.stderr
    erased = await invoke("erase", "--contact-id", str(shop.budi_id), "--yes")
    assert erased.exit_code == 0, erased.output
    assert f"erased contact {shop.budi_id}:" in erased.stdout
    async with unit_of_work(sessionmaker) as session:
        assert await session.get(Contact, shop.budi_id) is None
    missing = await invoke("erase", "--contact-id", str(shop.budi_id), "--yes")
    assert missing.exit_code == 1
    assert f"there is no contact {shop.budi_id}" in missing.stderr
