"""A workspace where two customers (Budi and Siti) have written, been answered and sent media.

Time is frozen at 16:30 UTC on 24 November 2025, right after the fixtures' messages, so the number's
greeting answers them and every automation table has rows about them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import time_machine
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.crypto import content
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.models import MediaFile
from layanify.media.storage import LocalStorage
from layanify.messaging.models import Message
from tests import factories
from tests.conftest import Tenant, WebhookPoster, make_settings

BUDI = "6281234567890"
BUDI_USER_ID = "ID.1873026459183720461"
SITI = "6289876543210"
NOW = datetime(2025, 11, 24, 16, 30, tzinfo=UTC)
GREETING = {"type": "text", "text": "Halo! Terima kasih sudah menghubungi Toko Budi."}
BUDI_IMAGE_WAMID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBNjEwNUQ2Q0M3NkFGNDAwMzI1AA=="
SITI_IMAGE_WAMID = "wamid.HBgNNjI4OTg3NjU0MzIxMBUCABIYFDNBQTRDNjI4MEQ4NUYyMjUxRDFBAA=="
OUTBOUND_WAMID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQ1RkY2QjlDMzM3QUQ4REM4NwA="
UNMATCHED_WAMID = "wamid.privacy-unmatched-status"


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where this test's media files are stored."""
    return tmp_path / "media"


@pytest.fixture
def settings(database_url: str, media_dir: Path) -> Settings:
    """The app's settings, with media stored under the test's directory."""
    return make_settings(database_url, media_dir=media_dir)


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@dataclass
class Shop:
    """What `arrange` made: the customers' contact ids and their files' bytes and keys."""

    budi_id: int
    siti_id: int
    budi_image: bytes
    budi_image_key: str
    budi_upload: bytes
    budi_upload_key: str
    shared_upload_key: str
    siti_image: bytes
    siti_image_key: str


async def message_id(sessionmaker: Sessionmaker, wamid: str) -> int:
    async with unit_of_work(sessionmaker) as session:
        found = (await session.execute(select(Message.id).where(Message.wamid == wamid))).scalar_one()
        return int(found)


async def store_file(
    sessionmaker: Sessionmaker,
    storage: LocalStorage,
    tenant: Tenant,
    content: bytes,
    *,
    message_id: int | None = None,
    meta_media_id: str | None = None,
    filename: str | None = None,
) -> str:
    """A stored media file: an inbound message's (message_id) or an upload (meta_media_id)."""
    key = f"{tenant.workspace_id}/2025/11/{uuid.uuid4().hex}.jpg"
    await storage.write(key, content)
    async with unit_of_work(sessionmaker) as session:
        session.add(
            MediaFile(
                workspace_id=tenant.workspace_id,
                message_id=message_id,
                number_id=tenant.number_id,
                direction="inbound" if message_id else "outbound",
                media_type="image",
                meta_media_id=meta_media_id,
                mime_type="image/jpeg",
                file_size=len(content),
                filename=filename,
                storage_key=key,
                status="stored",
                attempts=1,
            )
        )
    return key


async def send_upload(sessionmaker: Sessionmaker, tenant: Tenant, wa_id: str, meta_media_id: str) -> None:
    """An outbound image message (already sent) carrying an uploaded file."""
    message_id = await factories.create_outbound_message(
        sessionmaker, tenant, wamid=f"wamid.upload-{wa_id}-{meta_media_id}", wa_id=wa_id
    )
    async with unit_of_work(sessionmaker) as session:
        message = await session.get(Message, message_id)
        assert message is not None
        message.type = "image"
        message.content = {"type": "image", "media_id": meta_media_id, "caption": "Katalog"}


async def arrange(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    sessionmaker: Sessionmaker,
    media_dir: Path,
) -> Shop:
    """Budi and Siti write (texts, images, a batch naming both), get greeted, and receive statuses."""
    behaviour = {
        "auto_reply": {"enabled": True, "greeting": {"enabled": True, "reply": GREETING}},
        "read_receipts": "on_arrival",
        "typing_indicator": True,
    }
    response = await client.put(
        f"/api/v1/numbers/{tenant.number_id}/settings", json=behaviour, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    await webhook.deliver("text", "image", "text_with_user_id", "batch_multi")
    await factories.create_outbound_message(sessionmaker, tenant, wamid=OUTBOUND_WAMID)
    await webhook.deliver(
        "status_delivered",
        factories.status_update(UNMATCHED_WAMID, "sent", timestamp=1764001700, recipient=BUDI),
        "user_preferences",
    )
    storage = LocalStorage(media_dir)
    budi_image, budi_upload, siti_image = (
        b"\xff\xd8budi-transfer",
        b"\xff\xd8catalogue",
        b"\xff\xd8siti-product",
    )
    budi_image_key = await store_file(
        sessionmaker, storage, tenant, budi_image, message_id=await message_id(sessionmaker, BUDI_IMAGE_WAMID)
    )
    siti_image_key = await store_file(
        sessionmaker, storage, tenant, siti_image, message_id=await message_id(sessionmaker, SITI_IMAGE_WAMID)
    )
    budi_upload_key = await store_file(
        sessionmaker, storage, tenant, budi_upload, meta_media_id="upload-budi", filename="katalog.jpg"
    )
    await send_upload(sessionmaker, tenant, BUDI, "upload-budi")
    shared_upload_key = await store_file(
        sessionmaker, storage, tenant, b"\xff\xd8promo", meta_media_id="shared"
    )
    await send_upload(sessionmaker, tenant, BUDI, "shared")
    await send_upload(sessionmaker, tenant, SITI, "shared")
    contacts = (await client.get("/api/v1/contacts", headers=tenant.headers)).json()["data"]
    ids = {c["wa_id"]: c["id"] for c in contacts}
    return Shop(
        budi_id=ids[BUDI],
        siti_id=ids[SITI],
        budi_image=budi_image,
        budi_image_key=budi_image_key,
        budi_upload=budi_upload,
        budi_upload_key=budi_upload_key,
        shared_upload_key=shared_upload_key,
        siti_image=siti_image,
        siti_image_key=siti_image_key,
    )


def _plain(value: Any) -> bytes:
    """A stored value as bytes to search, opened first when it is sealed at rest (crypto/content.py)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return content.open_bytes(raw, content.WEBHOOK_AD) if raw.startswith(content.BYTES_MAGIC) else raw
    if isinstance(value, str) and value.startswith(("{", "[")):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(value)  # a JSON column as the driver gives it
    if isinstance(value, dict | list):
        token = content.sealed_token(value)
        return orjson.dumps(content.open_json(token) if token else value)
    if isinstance(value, str):
        return content.open_text(value).encode()
    return str(value).encode()


async def rows_mentioning(engine: AsyncEngine, *needles: str) -> list[tuple[str, dict[str, Any]]]:
    """Every row of every table with a value containing one of the strings, sealed values opened."""

    def tables(connection: Any) -> list[str]:
        return [t for t in inspect(connection).get_table_names() if t != "alembic_version"]

    found = []
    async with engine.connect() as connection:
        for table in await connection.run_sync(tables):
            rows = await connection.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 - our tables
            for row in rows.mappings():
                if any(needle.encode() in _plain(value) for value in row.values() for needle in needles):
                    found.append((table, dict(row)))
    return found
