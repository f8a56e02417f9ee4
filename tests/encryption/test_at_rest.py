"""With encryption on, nothing a customer or an agent wrote is readable in the database or media files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.crypto.content import BYTES_MAGIC
from layanify.db.session import Sessionmaker
from layanify.simulator import Simulator
from layanify.simulator.media import SAMPLES, sample
from tests.conftest import Tenant, WebhookPoster
from tests.encryption.conftest import assert_not_in, marked_fixture, raw_database, secret, set_encryption
from tests.sending.conftest import eventually

BUDI = "6281234567890"
EVERY_TYPE = [
    "text", "image", "video", "audio_voice", "document", "sticker", "location", "contacts",
    "interactive_button_reply", "interactive_list_reply", "button", "reaction", "order", "referral",
    "text_reply_context", "text_forwarded", "unsupported", "system_user_changed_number",
]  # fmt: skip
# What each sample file starts with (and the name each keeps inside): none may be on disk.
FILE_SIGNATURES = [b"JFIF", b"%PDF", b"OggS", b"OpusHead", b"ftypmp42", b"WEBPVP8", b"\x89PNG"]


async def all_messages(live: httpx.AsyncClient) -> list[dict[str, Any]]:
    found = []
    for conversation in (await live.get("/api/v1/conversations")).json()["data"]:
        page = await live.get(f"/api/v1/conversations/{conversation['id']}/messages?limit=200")
        found.extend(page.json()["data"])
    return found


async def test_the_database_and_the_media_directory_hold_no_plaintext_content(
    live: httpx.AsyncClient,
    simulator: Simulator,
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    engine: AsyncEngine,
    live_settings: Settings,
    media_dir: Path,
) -> None:
    await set_encryption(live, tenant.headers, True)
    secrets: list[str] = []

    # Meta delivers a message of every type (the fixtures, each human text a fresh secret word).
    poster = WebhookPoster(live, sessionmaker, live_settings)
    for name in EVERY_TYPE:
        body, words = marked_fixture(name)
        secrets += words
        assert (await poster.post(body)).status_code == 200
    await poster.process()

    # A customer sends a photo and a document that the downloader stores.
    photo_caption, document_name = secret("cap"), f"{secret('doc')}.pdf"
    photo = await simulator.customer_sends(BUDI, {"type": "image", "caption": photo_caption})
    document = await simulator.customer_sends(BUDI, {"type": "document", "filename": document_name})
    secrets += [photo_caption, document_name.removesuffix(".pdf")]

    async def received() -> bool:
        return {photo, document} <= {m["wamid"] for m in await all_messages(live)}

    await eventually(received)  # the customer's window is open

    # The business answers through the API: a text, and an uploaded photo with a caption.
    reply, upload_caption, upload_name = secret("rep"), secret("upc"), secret("upn")
    secrets += [reply, upload_caption, upload_name]
    _, jpeg = sample("image")
    uploaded = await live.post(
        "/api/v1/media",
        files={"file": (f"{upload_name}.jpg", jpeg, "image/jpeg")},
        data={"number_id": str(tenant.number_id)},
    )
    assert uploaded.status_code == 201, uploaded.text
    sends = [
        {"type": "text", "text": f"Siap kak, {reply} ya"},
        {"type": "image", "media_id": uploaded.json()["meta_media_id"], "caption": upload_caption},
    ]
    sent_ids = []
    for body in sends:
        response = await live.post(
            "/api/v1/messages", json={"number_id": tenant.number_id, "to": BUDI, "content": body}
        )
        assert response.status_code == 202, response.text
        sent_ids.append(response.json()["id"])

    async def settled() -> list[dict[str, Any]] | None:
        messages = await all_messages(live)
        by_wamid = {m["wamid"]: m for m in messages}
        downloaded = all(by_wamid.get(w, {}).get("content", {}).get("media_url") for w in (photo, document))
        sent = all(m["status"] in ("sent", "delivered", "read") for m in messages if m["id"] in sent_ids)
        return messages if downloaded and sent else None

    messages = await eventually(settled, within=20)

    # The API still shows everyone's words in the clear.
    shown = str(messages) + (await live.get(f"/api/v1/media/{uploaded.json()['id']}")).text
    assert all(word in shown for word in secrets), [w for w in secrets if w not in shown]
    conversation = next(m for m in messages if m["wamid"] == photo)["conversation_id"]
    listed = (await live.get(f"/api/v1/conversations/{conversation}")).json()
    assert listed["last_message_preview"].endswith(upload_caption)
    photo_url = next(m for m in messages if m["wamid"] == photo)["content"]["media_url"]
    assert (await live.get(photo_url)).content == jpeg
    served = await live.get(f"/api/v1/media/{uploaded.json()['id']}/content")
    assert served.content == jpeg

    # The database holds none of it: not the messages, previews, file names nor the raw webhooks.
    raw = await raw_database(engine, live_settings)
    assert photo.encode() in raw  # the rows are in these bytes (wamids are not secret)
    assert_not_in(raw, secrets)

    # The media directory holds only encrypted files.
    files = [p for p in media_dir.rglob("*") if p.is_file()]  # noqa: ASYNC240 - a test's few files
    assert len(files) >= 3  # the photo, the document and the upload
    for path in files:
        stored = path.read_bytes()
        assert stored.startswith(BYTES_MAGIC), path
        for _, plain in SAMPLES.values():
            assert plain[8:40] not in stored, path
        assert not any(signature in stored for signature in FILE_SIGNATURES), path
