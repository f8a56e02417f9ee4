"""The webhook endpoint: Meta's handshake, signatures, limits, and storing before acknowledging."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.webhooks.ingest import EventWriter
from layanify.webhooks.models import WebhookEvent
from layanify.whatsapp.signature import sign
from tests.conftest import APP_SECRET, BACKEND, VERIFY_TOKEN, WebhookPoster, fixture_bytes, stored_events

URL = "/api/webhooks/whatsapp"


async def test_handshake_echoes_the_bare_challenge(client: httpx.AsyncClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = await client.get(URL, params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
)
async def test_handshake_refuses_anything_else(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await client.get(URL, params=params)
    assert response.status_code == 403
    assert response.text != "1"


async def test_signed_event_is_committed_before_the_200(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    body = fixture_bytes("text")
    response = await client.post(URL, content=body, headers={"X-Hub-Signature-256": sign(APP_SECRET, body)})
    assert response.status_code == 200
    events = await stored_events(sessionmaker)
    assert [e.body for e in events] == [body]  # the raw bytes, exactly
    assert events[0].status == "pending"


@pytest.mark.parametrize(
    "header",
    [None, "sha256=" + "0" * 64, "sha1=abc", sign("another-secret", fixture_bytes("text")), "garbage"],
)
async def test_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, header: str | None
) -> None:
    headers = {"X-Hub-Signature-256": header} if header else {}
    response = await client.post(URL, content=fixture_bytes("text"), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert await stored_events(sessionmaker) == []


async def test_signature_covers_the_raw_bytes_not_a_reserialisation(webhook: WebhookPoster) -> None:
    # Same JSON, different bytes (escaped emoji, other spacing): each verifies only against its own bytes.
    raw = fixture_bytes("text").replace(b'"type": "text"', b'"type":"text"')
    assert (await webhook.post(raw)).status_code == 200
    tampered = raw.replace(b"Halo", b"Hola")
    response = await webhook.client.post(
        URL, content=tampered, headers={"X-Hub-Signature-256": sign(APP_SECRET, raw)}
    )
    assert response.status_code == 401


async def test_body_over_three_megabytes_is_413(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    body = json.dumps(
        {"object": "whatsapp_business_account", "entry": [], "pad": "x" * (3 * 1024 * 1024)}
    ).encode()
    response = await client.post(URL, content=body, headers={"X-Hub-Signature-256": sign(APP_SECRET, body)})
    assert response.status_code == 413
    assert await stored_events(sessionmaker) == []


async def test_streamed_body_over_the_limit_is_413_without_content_length(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"x" * (1024 * 1024)

    response = await client.post(URL, content=chunks(), headers={"X-Hub-Signature-256": "sha256=00"})
    assert response.status_code == 413
    assert await stored_events(sessionmaker) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"", "malformed_json"),
        (b"[1, 2, 3]", "not_a_webhook"),
        (b'{"object": "whatsapp_business_account"}', "not_a_webhook"),
        (b'{"entry": {"id": "1"}}', "not_a_webhook"),
    ],
)
async def test_malformed_signed_body_is_a_clear_400(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, body: bytes, code: str
) -> None:
    response = await client.post(URL, content=body, headers={"X-Hub-Signature-256": sign(APP_SECRET, body)})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert await stored_events(sessionmaker) == []


async def test_bad_requests_do_not_affect_what_is_stored(
    webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.post("text")
    await webhook.client.post(
        URL, content=b"{oops", headers={"X-Hub-Signature-256": sign(APP_SECRET, b"{oops")}
    )
    await webhook.client.post(URL, content=fixture_bytes("image"))
    await webhook.post("image")
    assert len(await stored_events(sessionmaker)) == 2


async def test_event_that_cannot_be_stored_gets_503_so_meta_retries(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def database_down(self: EventWriter, *rows_and_connection: object) -> list[int]:
        raise ConnectionError("database is down")

    monkeypatch.setattr(EventWriter, "_insert", database_down)
    response = await webhook.post("text")
    assert response.status_code == 503
    monkeypatch.undo()
    assert await stored_events(sessionmaker) == []
    # The writer survives the failure: the retried delivery is stored.
    assert (await webhook.post("text")).status_code == 200
    assert len(await stored_events(sessionmaker)) == 1


async def test_concurrent_posts_are_each_stored_once(
    webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    bodies = [fixture_bytes("text").replace(b"Halo", f"Halo {i}".encode()) for i in range(50)]
    responses = await asyncio.gather(*(webhook.post(b) for b in bodies))
    assert {r.status_code for r in responses} == {200}
    assert len(await stored_events(sessionmaker)) == 50


async def test_unconfigured_app_secret_refuses_instead_of_trusting(
    client: httpx.AsyncClient, app: object, sessionmaker: Sessionmaker
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"whatsapp_app_secret": None})  # type: ignore[attr-defined]
    body = fixture_bytes("text")
    response = await client.post(URL, content=body, headers={"X-Hub-Signature-256": sign(APP_SECRET, body)})
    assert response.status_code == 401
    assert "WHATSAPP_APP_SECRET" in response.json()["error"]["message"]
    assert await stored_events(sessionmaker) == []


@pytest.mark.skipif(
    BACKEND != "postgresql", reason="the receipt writer's own connection is PostgreSQL's path"
)
async def test_receipts_survive_the_database_dropping_the_writers_connection(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, engine: AsyncEngine
) -> None:
    assert (await webhook.post("text")).status_code == 200
    # What a PostgreSQL restart or an idle timeout does to the writer's connection between two webhooks.
    async with engine.connect() as connection:
        killed = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE '%WITH ORDINALITY%'"
                " AND pid <> pg_backend_pid()"
            )
        )
    assert killed == 1
    await asyncio.sleep(0.2)
    assert (await webhook.post("image")).status_code == 200
    assert len(await stored_events(sessionmaker)) == 2


async def test_each_request_learns_the_id_of_its_own_row(
    engine: AsyncEngine, sessionmaker: Sessionmaker
) -> None:
    writer = EventWriter(engine, max_batch=64)
    await writer.start()
    try:
        bodies = [fixture_bytes("text").replace(b"Halo", f"Halo {i}".encode()) for i in range(200)]
        ids = await asyncio.gather(*(writer.store(body) for body in bodies))
    finally:
        await writer.stop()
    async with unit_of_work(sessionmaker) as session:
        rows = (await session.execute(select(WebhookEvent.id, WebhookEvent.body))).all()
        stored = {event_id: body for event_id, body in rows}
    assert [stored[event_id] for event_id in ids] == bodies
