"""`layanify keys rotate` re-encrypts message content, previews, file names, raw webhooks and media files
under the new key; afterwards the old key can go. Interrupted, it leaves everything readable."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import JSON, LargeBinary, Text, select, type_coerce
from typer.testing import CliRunner

from layanify.app import create_app
from layanify.cli.main import app as cli
from layanify.config import get_settings
from layanify.conversations.models import Conversation
from layanify.crypto import content, rotation
from layanify.crypto.keyring import Keyring
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.models import MediaFile
from layanify.media.storage import LocalStorage
from layanify.messaging.models import Message
from layanify.simulator.media import sample
from layanify.webhooks.models import WebhookEvent
from tests import factories
from tests.conftest import Tenant, WebhookPoster, make_settings
from tests.encryption.conftest import marked_fixture, set_encryption

NEW = "new:" + base64.b64encode(b"n" * 32).decode()
OLD = factories.TEST_ENCRYPTION_KEYS
runner = CliRunner()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def _cli_env(database_url: str, media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("LAYANIFY_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("LAYANIFY_MEDIA_DIR", str(media_dir))
    monkeypatch.setenv("LAYANIFY_ENCRYPTION_KEYS", f"{NEW},{OLD}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def rotate_from_the_cli() -> str:
    result = await asyncio.to_thread(runner.invoke, cli, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    return result.stdout


async def add_file(
    sessionmaker: Sessionmaker, storage: LocalStorage, tenant: Tenant, name: str, *, seal: bool
) -> int:
    """A stored PDF (written sealed or plain) with its row."""
    _, pdf = sample("document")
    key = f"{tenant.workspace_id}/2026/11/{name}.pdf"
    await storage.write(key, pdf, seal=seal)
    async with unit_of_work(sessionmaker) as session:
        file = MediaFile(
            workspace_id=tenant.workspace_id,
            direction="outbound",
            media_type="document",
            mime_type="application/pdf",
            filename=f"{name}.pdf",
            storage_key=key,
            status="stored",
            file_size=len(pdf),
        )
        session.add(file)
        await session.flush()
        return file.id


async def arrange(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    storage: LocalStorage,
) -> list[int]:
    """Content of every kind: some stored plain before the owner turned encryption on, the rest sealed."""
    await webhook.deliver(factories.text_message("wamid.before", "sebelum dienkripsi", timestamp=1764000000))
    plain_file = await add_file(sessionmaker, storage, tenant, "sebelum", seal=False)
    await set_encryption(client, tenant.headers, True)
    image, _ = marked_fixture("image")
    await webhook.deliver(image, factories.text_message("wamid.after", "sesudah", timestamp=1764000900))
    return [plain_file, await add_file(sessionmaker, storage, tenant, "kontrak-rahasia", seal=True)]


async def stored_key_ids(sessionmaker: Sessionmaker, storage: LocalStorage) -> dict[str, set[str | None]]:
    """Which key each kind of stored value is encrypted with (None: plain)."""
    ring = content.keyring()
    async with unit_of_work(sessionmaker) as session:
        contents = (await session.execute(select(type_coerce(Message.content, JSON)))).scalars()
        previews = (
            await session.execute(select(type_coerce(Conversation.last_message_preview, Text)))
        ).scalars()
        names = (await session.execute(select(type_coerce(MediaFile.filename, Text)))).scalars()
        bodies = (await session.execute(select(type_coerce(WebhookEvent.body, LargeBinary)))).scalars()
        keys = (await session.execute(select(MediaFile.storage_key))).scalars()
        found: dict[str, set[str | None]] = {
            "contents": {ring.key_id_of(content.sealed_token(c) or "") for c in contents},
            "previews": {content.text_key_id(p) for p in previews},
            "names": {content.text_key_id(n or "") for n in names},
            "bodies": {content.bytes_key_id(bytes(b)) for b in bodies},
        }
    found["files"] = {await storage.sealed_with(key) for key in keys if key}
    return found


async def check_reads_with_only(
    database_url: str, media_dir: Path, keys: str, tenant: Tenant, file_ids: list[int], *, word: str
) -> None:
    """The product configured with `keys` shows every message, preview, file and raw webhook."""
    settings = make_settings(database_url, encryption_keys=keys, media_dir=media_dir)
    application = create_app(settings, migrate=False)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://t", headers=tenant.headers
        ) as client,
    ):
        conversations = (await client.get("/api/v1/conversations")).json()["data"]
        assert conversations[0]["last_message_preview"] == "sesudah"
        texts: list[Any] = []
        for conversation in conversations:
            page = await client.get(f"/api/v1/conversations/{conversation['id']}/messages")
            assert page.status_code == 200
            texts += [m["content"].get("text") or m["content"].get("caption") for m in page.json()["data"]]
        assert {"sebelum dienkripsi", "sesudah"} <= set(texts)
        _, pdf = sample("document")
        for file_id in file_ids:
            assert (await client.get(f"/api/v1/media/{file_id}/content")).content == pdf
            assert (await client.get(f"/api/v1/media/{file_id}")).json()["filename"].endswith(".pdf")
        events = (await client.get("/api/v1/webhooks/events")).json()["data"]
        for event in events:
            shown = await client.get(f"/api/v1/webhooks/events/{event['id']}")
            assert shown.json()["payload"]["object"] == "whatsapp_business_account"
        found = (await client.get("/api/v1/conversations", params={"q": word})).json()["data"]
        assert len(found) == 1


@pytest.mark.usefixtures("_cli_env")
async def test_rotation_moves_everything_to_the_new_key_and_the_old_key_can_go(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
    database_url: str,
) -> None:
    storage = LocalStorage(media_dir)
    file_ids = await arrange(client, tenant, webhook, sessionmaker, storage)
    before = await stored_key_ids(sessionmaker, storage)
    assert before["contents"] == {None, "test"}  # the message stored before encryption was on is plain
    assert before["files"] == {None, "test"}

    out = await rotate_from_the_cli()
    assert "under key 'new'" in out
    assert await stored_key_ids(sessionmaker, storage) == {
        "contents": {"new"},
        "previews": {"new"},
        "names": {"new"},
        "bodies": {"new"},
        "files": {"new"},
    }
    # Again: nothing left to do.
    assert "0 message(s), 0 preview(s), 0 file name(s), 0 webhook body(ies), 0 media file(s)" in (
        await rotate_from_the_cli()
    )
    # The old key is removed: everything still reads, and search finds words under the new key.
    await check_reads_with_only(database_url, media_dir, NEW, tenant, file_ids, word="sebelum")


async def test_an_interrupted_rotation_leaves_everything_readable_and_finishes_when_run_again(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = LocalStorage(media_dir)
    file_ids = await arrange(client, tenant, webhook, sessionmaker, storage)
    content.configure(content.ContentCipher(keyring=Keyring.from_setting(f"{NEW},{OLD}")))
    calls = 0
    tokens = content.search_tokens

    def failing_on_the_second(workspace_id: int, value: Any) -> str | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return tokens(workspace_id, value)

    monkeypatch.setattr(content, "search_tokens", failing_on_the_second)
    with pytest.raises(RuntimeError, match="power cut"):
        await rotation.rotate_content(sessionmaker, storage, batch=1)
    half = await stored_key_ids(sessionmaker, storage)
    assert half["contents"] == {"new", "test"}  # the first batch was committed, the rest waits
    await check_reads_with_only(database_url, media_dir, f"{NEW},{OLD}", tenant, file_ids, word="sesudah")

    monkeypatch.setattr(content, "search_tokens", tokens)
    content.configure(content.ContentCipher(keyring=Keyring.from_setting(f"{NEW},{OLD}")))
    done = await rotation.rotate_content(sessionmaker, storage, batch=1)
    assert done.media_files == 2
    assert {k for kinds in (await stored_key_ids(sessionmaker, storage)).values() for k in kinds} == {"new"}
    await check_reads_with_only(database_url, media_dir, NEW, tenant, file_ids, word="sesudah")
