"""Encrypted content reads as before: the UI and the API show it, search finds it by whole words, and
an owner can turn encryption off (new content is then plain, and older content still reads)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import JSON, Text, select, type_coerce

from layanify.accounts import service as accounts
from layanify.app import create_app
from layanify.config import Settings
from layanify.conversations.models import Conversation
from layanify.crypto import content
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from tests import factories
from tests.conftest import Tenant, WebhookPoster, make_settings
from tests.encryption.conftest import secret, set_encryption
from tests.web.test_inbox_pages import login


async def stored_messages(sessionmaker: Sessionmaker) -> dict[str, tuple[Any, str | None]]:
    """Each message's content and search tokens as stored (not decrypted), by wamid."""
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(
            select(Message.wamid, type_coerce(Message.content, JSON), Message.search_tokens)
        )
        return {wamid: (stored, tokens) for wamid, stored, tokens in rows.all()}


async def stored_previews(sessionmaker: Sessionmaker) -> list[str]:
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(select(type_coerce(Conversation.last_message_preview, Text)))
        return list(rows.scalars())


async def listed_names(client: httpx.AsyncClient, tenant: Tenant, q: str) -> set[str]:
    """The contacts of the conversations the API's inbox search returns."""
    found = await client.get("/api/v1/conversations", params={"q": q}, headers=tenant.headers)
    assert found.status_code == 200, found.text
    return {c["contact"]["profile_name"] for c in found.json()["data"]}


async def test_the_inbox_shows_and_finds_encrypted_messages_by_whole_words(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await set_encryption(client, tenant.headers, True)
    word = secret("kode")
    await webhook.deliver(
        factories.text_message("wamid.e1", f"Mau pesan Kaos hitam ukuran XL, {word}!", name="Andi"),
        factories.text_message(
            "wamid.e2", "celana panjang", wa_id="6282222222222", name="Dewi", timestamp=1764000100
        ),
    )
    stored = await stored_messages(sessionmaker)
    sealed, tokens = stored["wamid.e1"]
    assert content.sealed_token(sealed) is not None
    assert tokens is not None
    assert word not in tokens
    assert "hitam" not in tokens
    assert all(not p or p.startswith(content.TEXT_SEALED) for p in await stored_previews(sessionmaker))

    # Whole words, any case, any order, NFKC-equivalent forms; not a part of a word.
    for q in ("hitam", "HITAM", "xl kaos", word, "ｋａｏｓ", "Hitam, XL"):
        assert await listed_names(client, tenant, q) == {"Andi"}, q
    assert await listed_names(client, tenant, "celana") == {"Dewi"}
    for q in ("hit", word[:-2], "kaos merah"):
        assert await listed_names(client, tenant, q) == set(), q

    # The UI shows the text and the preview, and its search finds the conversation the same way.
    await login(client, tenant)
    listing = await client.get("/inbox/list?q=hitam", headers={"HX-Request": "true", "Accept-Language": "en"})
    assert "Andi" in listing.text
    assert "Dewi" not in listing.text
    assert word in listing.text  # the preview
    conversation_id = (await client.get("/api/v1/conversations?q=hitam", headers=tenant.headers)).json()[
        "data"
    ][0]["id"]
    page = await client.get(f"/inbox/{conversation_id}", headers={"Accept-Language": "en"})
    assert f"Mau pesan Kaos hitam ukuran XL, {word}!" in page.text


async def test_another_workspace_searching_the_same_word_finds_nothing_and_has_other_tokens(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, webhook: WebhookPoster
) -> None:
    await set_encryption(client, tenant.headers, True)
    await webhook.deliver(factories.text_message("wamid.t1", "rahasia dagang", name="Andi"))
    assert await listed_names(client, tenant, "rahasia") == {"Andi"}
    assert await listed_names(client, other_tenant, "rahasia") == set()
    same = {"type": "text", "text": "rahasia"}
    assert content.search_tokens(tenant.workspace_id, same) != content.search_tokens(
        other_tenant.workspace_id, same
    )


async def test_turning_encryption_off_stores_new_content_plain_and_old_content_still_reads(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await set_encryption(client, tenant.headers, True)
    await webhook.deliver(factories.text_message("wamid.old", "pesanan lama", timestamp=1764000000))
    await set_encryption(client, tenant.headers, False)
    await webhook.deliver(factories.text_message("wamid.new", "pesanan baru", timestamp=1764000100))

    stored = await stored_messages(sessionmaker)
    assert content.sealed_token(stored["wamid.old"][0]) is not None
    assert stored["wamid.new"] == ({"type": "text", "text": "pesanan baru"}, None)
    assert await stored_previews(sessionmaker) == ["pesanan baru"]

    conversation = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"][0]
    messages = await client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=tenant.headers
    )
    assert [m["content"]["text"] for m in messages.json()["data"]] == ["pesanan lama", "pesanan baru"]
    assert conversation["last_message_preview"] == "pesanan baru"
    # Both are found: the old one by its tokens, the new one as plain text (parts of words too).
    assert await listed_names(client, tenant, "lama") == {"Budi Santoso"}
    assert await listed_names(client, tenant, "bar") == {"Budi Santoso"}

    await set_encryption(client, tenant.headers, True)
    await webhook.deliver(factories.text_message("wamid.again", "pesanan ketiga", timestamp=1764000200))
    assert content.sealed_token((await stored_messages(sessionmaker))["wamid.again"][0]) is not None


async def test_only_an_owner_changes_it_and_every_member_can_see_it(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    agent = await factories.agent_headers(sessionmaker)
    refused = await client.patch(
        "/api/v1/workspace/encryption", json={"content_encryption": True}, headers=agent
    )
    assert refused.status_code == 403
    shown = await client.get("/api/v1/workspace/encryption", headers=agent)
    assert shown.json() == {"content_encryption": False}
    await set_encryption(client, tenant.headers, True)
    assert (await client.get("/api/v1/workspace/encryption", headers=agent)).json() == {
        "content_encryption": True
    }
    bad = await client.patch("/api/v1/workspace/encryption", json={"content_encryption": "yes please"})
    assert bad.status_code in (401, 422)


@pytest.mark.parametrize(("setting", "expected"), [("on", True), ("off", False)])
async def test_a_new_workspace_takes_the_setting(
    database_url: str, sessionmaker: Sessionmaker, setting: str, expected: bool
) -> None:
    settings = make_settings(database_url, content_encryption=setting)
    async with LifespanManager(create_app(settings, migrate=False)), unit_of_work(sessionmaker) as session:
        _, workspace, _ = await accounts.create_user(
            session, email="baru@toko.id", password="kopi-toko-12345", workspace_name="Baru"
        )
        assert workspace.content_encryption is expected


@pytest.mark.parametrize(
    ("setting", "env", "expected"),
    [("auto", "production", True), ("auto", "development", False), ("auto", "test", False),
     ("on", "development", True), ("off", "production", False)],
)  # fmt: skip
def test_auto_means_on_in_production(setting: str, env: str, expected: bool) -> None:
    settings = Settings.model_validate({"content_encryption": setting, "env": env})
    assert settings.new_workspaces_encrypt_content is expected
