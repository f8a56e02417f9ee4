"""Inbound media lands in our storage and is served to the workspace only; uploads can be sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.media.models import MediaFile
from layanify.media.tasks import MediaDownloader
from layanify.simulator import Simulator
from layanify.simulator.media import Media, sample
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.signature import sign
from tests.conftest import APP_SECRET, Tenant, WebhookPoster, fixture
from tests.sending.conftest import eventually

BUDI = "6281234567890"


async def customer_sends_media(
    live: httpx.AsyncClient, simulator: Simulator, spec: dict[str, Any]
) -> tuple[str, Media]:
    """Budi sends a media message; its wamid and the file as the simulator holds it."""
    wamid = await simulator.customer_sends(BUDI, spec)
    item = simulator.world.inbound[wamid].message[spec["type"]]
    return wamid, simulator.world.media[item["id"]]


async def message_with(live: httpx.AsyncClient, wamid: str, key: str = "media_url") -> dict[str, Any]:
    """The stored message with this wamid once its content carries `key`."""

    async def check() -> Any:
        conversations = (await live.get("/api/v1/conversations")).json()["data"]
        for conversation in conversations:
            page = await live.get(f"/api/v1/conversations/{conversation['id']}/messages")
            for message in page.json()["data"]:
                if message["wamid"] == wamid and message["content"].get(key):
                    return message
        return None

    found: dict[str, Any] = await eventually(check)
    return found


async def media_rows(sessionmaker: Sessionmaker) -> list[MediaFile]:
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(MediaFile).order_by(MediaFile.id))).scalars())


def stored_files(media_dir: Path) -> list[Path]:
    return [p for p in media_dir.rglob("*") if p.is_file()] if media_dir.exists() else []


async def test_a_customers_photo_is_served_to_the_workspace_exactly_as_sent(
    live: httpx.AsyncClient, simulator: Simulator, media_dir: Path
) -> None:
    wamid, media = await customer_sends_media(live, simulator, {"type": "image", "caption": "foto"})
    message = await message_with(live, wamid)
    assert message["content"]["caption"] == "foto"
    assert message["content"]["media"]["id"] == media.id

    response = await live.get(message["content"]["media_url"])
    assert response.status_code == 200
    assert response.content == media.content
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["x-content-type-options"] == "nosniff"

    media_id = int(message["content"]["media_url"].split("/")[-2])
    facts = (await live.get(f"/api/v1/media/{media_id}")).json()
    assert facts["status"] == "stored"
    assert facts["type"] == "image"
    assert facts["direction"] == "inbound"
    assert facts["message_id"] == message["id"]
    assert facts["file_size"] == len(media.content)
    assert facts["content_url"] == message["content"]["media_url"]
    [path] = stored_files(media_dir)
    assert path.read_bytes() == media.content
    assert path.suffix == ".jpg"


@pytest.mark.parametrize(
    ("spec", "content_type", "disposition"),
    [
        ({"type": "document", "filename": "invoice-0412.pdf"}, "application/pdf", "attachment"),
        ({"type": "audio", "voice": True}, "audio/ogg", "inline"),
        ({"type": "sticker"}, "image/webp", "inline"),
        ({"type": "video", "caption": "unboxing"}, "video/mp4", "inline"),
    ],
)
async def test_every_media_type_is_downloaded_with_its_type(
    live: httpx.AsyncClient,
    simulator: Simulator,
    spec: dict[str, Any],
    content_type: str,
    disposition: str,
) -> None:
    wamid, media = await customer_sends_media(live, simulator, spec)
    message = await message_with(live, wamid)
    response = await live.get(message["content"]["media_url"])
    assert response.status_code == 200
    assert response.content == media.content
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["content-disposition"].startswith(disposition)
    if spec["type"] == "document":
        assert 'filename="invoice-0412.pdf"' in response.headers["content-disposition"]


async def test_another_workspace_cannot_see_the_file(
    live: httpx.AsyncClient, simulator: Simulator, other_tenant: Tenant
) -> None:
    wamid, _ = await customer_sends_media(live, simulator, {"type": "image"})
    url = (await message_with(live, wamid))["content"]["media_url"]
    media_id = url.split("/")[-2]
    for path in (url, f"/api/v1/media/{media_id}"):
        response = await live.get(path, headers=other_tenant.headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert (await live.get(url, headers={"Authorization": ""})).status_code == 401


async def test_a_file_that_does_not_match_metas_checksum_is_not_kept(
    live: httpx.AsyncClient, simulator: Simulator, sessionmaker: Sessionmaker, media_dir: Path
) -> None:
    _, media = await customer_sends_media(live, simulator, {"type": "image"})
    media.content = media.content + b"tampered"  # after the webhook carried the original's hash

    async def failed() -> Any:
        rows = await media_rows(sessionmaker)
        return rows[0] if rows and rows[0].status == "failed" else None

    row: MediaFile = await eventually(failed)
    assert row.last_error is not None
    assert "SHA-256" in row.last_error
    assert row.storage_key is None
    assert stored_files(media_dir) == []
    facts = (await live.get(f"/api/v1/media/{row.id}")).json()
    assert facts["status"] == "failed"
    assert facts["content_url"] is None
    assert (await live.get(f"/api/v1/media/{row.id}/content")).status_code == 410


async def test_a_download_meta_fails_for_a_while_is_retried(
    live: httpx.AsyncClient, simulator: Simulator, sessionmaker: Sessionmaker
) -> None:
    simulator.set_faults(error_rate_5xx=1.0)
    await simulator.customer_sends(BUDI, {"type": "document"})

    async def retried() -> Any:
        rows = await media_rows(sessionmaker)
        return rows[0] if rows and rows[0].attempts >= 2 else None

    row: MediaFile = await eventually(retried)
    assert row.status == "pending"
    assert row.last_error
    simulator.set_faults(error_rate_5xx=0.0)

    async def stored() -> Any:
        rows = await media_rows(sessionmaker)
        return rows[0] if rows[0].status == "stored" else None

    done: MediaFile = await eventually(stored)
    assert done.last_error is None


async def test_media_older_than_metas_seven_days_fails_without_a_download(
    live: httpx.AsyncClient, simulator: Simulator, sessionmaker: Sessionmaker
) -> None:
    payload = fixture("image")  # Meta's example, timestamped long ago
    media_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]
    body = json.dumps(payload).encode()
    response = await live.post(
        "/api/webhooks/whatsapp",
        content=body,
        headers={"X-Hub-Signature-256": sign(APP_SECRET, body), "Content-Type": "application/json"},
    )
    assert response.status_code == 200

    async def failed() -> Any:
        rows = await media_rows(sessionmaker)
        return rows[0] if rows and rows[0].status == "failed" else None

    row: MediaFile = await eventually(failed)
    assert row.attempts == 0
    assert row.last_error is not None
    assert "7 days" in row.last_error
    assert all(media_id not in json.dumps(r, default=str) for r in simulator.requests)


async def test_an_uploaded_image_is_sent_by_its_media_id(
    live: httpx.AsyncClient, simulator: Simulator, tenant: Tenant, media_dir: Path
) -> None:
    wamid = await simulator.customer_sends(BUDI, {"type": "text", "text": "kirim fotonya kak"})
    await message_with(live, wamid, key="text")  # the customer's window is open
    _, jpeg = sample("image")
    response = await live.post(
        "/api/v1/media",
        files={"file": ("produk.jpg", jpeg, "image/jpeg")},
        data={"number_id": str(tenant.number_id)},
    )
    assert response.status_code == 201, response.text
    uploaded = response.json()
    assert uploaded["type"] == "image"
    assert uploaded["mime_type"] == "image/jpeg"
    assert uploaded["file_size"] == len(jpeg)
    assert uploaded["filename"] == "produk.jpg"
    assert simulator.world.media[uploaded["meta_media_id"]].content == jpeg
    [path] = stored_files(media_dir)
    assert path.read_bytes() == jpeg
    served = await live.get(f"/api/v1/media/{uploaded['id']}/content")
    assert served.content == jpeg

    sent = await live.post(
        "/api/v1/messages",
        json={
            "number_id": tenant.number_id,
            "to": BUDI,
            "content": {"type": "image", "media_id": uploaded["meta_media_id"], "caption": "ini kak"},
        },
    )
    assert sent.status_code == 202, sent.text

    async def is_sent() -> Any:
        body = (await live.get(f"/api/v1/messages/{sent.json()['id']}")).json()
        return body if body["status"] in ("sent", "delivered", "read") else None

    message = await eventually(is_sent)
    assert message["error"] is None


@pytest.mark.parametrize(
    ("filename", "content", "mime_type", "status", "code"),
    [
        ("big.jpg", b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), "image/jpeg", 413, "media_too_large"),
        ("sticker.webp", sample("sticker")[1] + b"\x00" * (100 * 1024), "image/webp", 413, "media_too_large"),
        ("anim.gif", b"GIF89a" + b"\x00" * 100, "image/gif", 415, "unsupported_media_type"),
        ("page.html", b"<script>alert(1)</script>", "text/html", 415, "unsupported_media_type"),
        ("empty.pdf", b"", "application/pdf", 415, "unsupported_media_type"),
    ],
)
async def test_an_upload_whatsapp_would_refuse_is_refused_and_nothing_is_kept(
    live: httpx.AsyncClient,
    simulator: Simulator,
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    media_dir: Path,
    filename: str,
    content: bytes,
    mime_type: str,
    status: int,
    code: str,
) -> None:
    response = await live.post(
        "/api/v1/media",
        files={"file": (filename, content, mime_type)},
        data={"number_id": str(tenant.number_id)},
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert stored_files(media_dir) == []
    assert await media_rows(sessionmaker) == []
    assert simulator.world.media == {}


async def test_an_upload_needs_a_file_and_a_number_of_the_workspace(
    live: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    jpeg = sample("image")[1]
    no_file = await live.post("/api/v1/media", data={"number_id": str(tenant.number_id)})
    assert no_file.status_code == 422
    no_number = await live.post("/api/v1/media", files={"file": ("a.jpg", jpeg, "image/jpeg")})
    assert no_number.status_code == 422
    theirs = await live.post(
        "/api/v1/media",
        files={"file": ("a.jpg", jpeg, "image/jpeg")},
        data={"number_id": str(other_tenant.number_id)},
    )
    assert theirs.status_code == 404
    assert await media_rows(sessionmaker) == []
    count = select(func.count()).select_from(MediaFile)
    async with unit_of_work(sessionmaker) as session:
        assert (await session.execute(count)).scalar_one() == 0


async def test_media_stored_without_a_downloader_running_is_found_once_by_any_number_of_them(
    webhook: WebhookPoster, settings: Settings, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    await webhook.deliver("image", "document")  # stored by a webhook worker that knows nothing of media
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())
    async with GraphClient(base_url="http://unused.test", version="v23.0") as graph:
        downloaders = [MediaDownloader(sessionmaker, settings, keyring, graph) for _ in range(2)]
        assert await downloaders[0].enqueue_new() == 2
        assert await downloaders[1].enqueue_new() == 0
        assert await downloaders[0].enqueue_new() == 0
    rows = await media_rows(sessionmaker)
    assert len(rows) == 2
    assert {r.media_type for r in rows} == {"image", "document"}
    assert all(r.workspace_id == tenant.workspace_id and r.number_id == tenant.number_id for r in rows)


async def test_in_process_the_downloader_lets_webhook_receipts_go_first_but_not_forever(
    webhook: WebhookPoster, settings: Settings, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    """Sharing the server's core, a pass waits while receipts are busy (at saturation its commits cost
    the receipts ~10 % of acks/s, decision 46), and only for the bounded wait: media is never stuck."""
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())

    async def filed_after(busy: bool, max_defer: float) -> tuple[float, float]:
        """(seconds with nothing filed yet, seconds until the file row was there)."""
        bounded = settings.model_copy(update={"worker_max_defer_seconds": max_defer})
        stop = asyncio.Event()
        before = len(await media_rows(sessionmaker))
        loop = asyncio.get_running_loop()
        async with GraphClient(base_url="http://127.0.0.1:9", version="v23.0") as graph:  # refused at once
            downloader = MediaDownloader(sessionmaker, bounded, keyring, graph, receipts_busy=lambda: busy)
            started = loop.time()
            task = asyncio.create_task(downloader.run(stop))
            nothing_yet = 0.0
            async with asyncio.timeout(10):
                while len(await media_rows(sessionmaker)) == before:
                    nothing_yet = loop.time() - started
                    await asyncio.sleep(0.02)
            filed = loop.time() - started
            stop.set()
            await task
        return nothing_yet, filed

    await webhook.deliver("image")
    nothing_yet, filed = await filed_after(busy=True, max_defer=0.5)
    assert nothing_yet >= 0.25  # receipts were waiting: they went first… (a slow poll may end early)
    assert filed >= 0.5  # …for the bounded wait, and then the file was taken on

    await webhook.deliver("video")
    _, filed = await filed_after(busy=False, max_defer=30)
    assert filed < 5  # quiet receipts: no wait at all (a wait would have been 30 s)
