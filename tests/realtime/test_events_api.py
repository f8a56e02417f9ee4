"""`GET /api/v1/events` over real HTTP: what a browser's EventSource sees as webhooks arrive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from layanify.app import create_app
from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.realtime.broker import RedisBroker
from layanify.realtime.events import parse_id
from layanify.webhooks.tasks import WebhookWorker
from tests import factories
from tests.conftest import Tenant, WebhookPoster
from tests.realtime.conftest import EventStream, LiveServer, Sse, redis_database, serve

Deliver = Callable[..., Awaitable[None]]


def text(wamid: str, body: str, **kwargs: Any) -> dict[str, Any]:
    """A customer's text written just now."""
    return factories.text_message(wamid, body, timestamp=int(time.time()), **kwargs)


async def next_of(stream: EventStream, *types: str) -> Sse:
    """The next event of one of `types`, skipping the others."""
    while True:
        event = await stream.next()
        if event.event in types:
            return event


async def test_an_inbound_message_reaches_its_workspace_and_no_other(
    live: LiveServer, deliver: Deliver, tenant: Tenant, other_tenant: Tenant, client: httpx.AsyncClient
) -> None:
    async with (
        live.client() as http,
        live.events(http, tenant.headers) as mine,
        live.events(http, other_tenant.headers) as theirs,
    ):
        assert (await mine.next()).event == "ready"
        assert (await theirs.next()).event == "ready"

        await deliver(text("wamid.live1", "Halo, stok kaos ada?"))
        created = await mine.next()
        assert created.event == "message.created"
        assert set(created.data) == {"conversation_id", "message_id"}  # ids, never content
        touched = await mine.next()
        assert (touched.event, touched.data) == (
            "conversation.updated",
            {"conversation_id": created.data["conversation_id"]},
        )
        message_id = created.data["message_id"]
        shown = await client.get(f"/api/v1/messages/{message_id}", headers=tenant.headers)
        assert shown.json()["content"]["text"] == "Halo, stok kaos ada?"

        # The other workspace's next event is its own message: nothing of ours came before it.
        await deliver(text("wamid.live2", "Hi", phone_number_id=other_tenant.phone_number_id))
        their_event = await theirs.next()
        assert their_event.event == "message.created"
        assert their_event.data["message_id"] != message_id
        assert (
            await client.get(f"/api/v1/messages/{message_id}", headers=other_tenant.headers)
        ).status_code == 404


async def test_a_reconnecting_page_gets_the_events_it_missed(
    live: LiveServer, deliver: Deliver, tenant: Tenant
) -> None:
    async with live.client() as http:
        async with live.events(http, tenant.headers) as stream:
            ready = await stream.next()
            await deliver(text("wamid.r1", "Pesanan saya sudah dikirim?"))
            first = await stream.next()
            assert first.event == "message.created"
        # Disconnected after its first event: the rest of this batch and the next message are missed.
        await deliver(text("wamid.r2", "Halo?"))

        # The browser resends the id as Last-Event-ID; our page's own reconnect passes ?last_event_id=.
        last_id = first.id or ""
        for headers, params in (
            (tenant.headers | {"Last-Event-ID": last_id}, {}),
            (tenant.headers, {"last_event_id": last_id}),
        ):
            async with live.events(http, headers, **params) as again:
                assert (await again.next()).event == "ready"
                missed = [await again.next() for _ in range(3)]
                assert [e.event for e in missed] == [
                    "conversation.updated",
                    "message.created",
                    "conversation.updated",
                ]
                assert missed[1].data["message_id"] > first.data["message_id"]
                assert missed[1].data["conversation_id"] == first.data["conversation_id"]

        # From the very first position (`ready`'s id) every event is replayed.
        async with live.events(http, tenant.headers | {"Last-Event-ID": ready.id or ""}) as replay:
            await replay.next()
            assert (await replay.next()).id == first.id


@pytest.mark.parametrize("unknown", ["1-1", "not\nan id"])
async def test_an_id_the_server_does_not_have_gets_resync(
    live: LiveServer, tenant: Tenant, unknown: str
) -> None:
    async with live.client() as http, live.events(http, tenant.headers, last_event_id=unknown) as stream:
        ready = await stream.next()
        assert ready.event == "ready"
        resync = await stream.next()
        assert resync.event == "resync"
        assert parse_id(resync.id or "") is not None


async def test_status_changes_and_queued_replies_are_live(
    live: LiveServer,
    deliver: Deliver,
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    client: httpx.AsyncClient,
) -> None:
    sent = await factories.create_outbound_message(sessionmaker, tenant, wamid="wamid.out1")
    async with live.client() as http, live.events(http, tenant.headers) as stream:
        await stream.next()
        await deliver(factories.status_update("wamid.out1", "delivered", timestamp=int(time.time())))
        updated = await stream.next()
        assert updated.event == "message.updated"
        assert updated.data["message_id"] == sent
        assert updated.data["status"] == "delivered"

        # An agent's reply queued through the API.
        await deliver(text("wamid.in1", "Terima kasih"))
        inbound = await next_of(stream, "message.created")
        conversation_id = inbound.data["conversation_id"]
        reply = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"content": {"type": "text", "text": "Sama-sama"}},
            headers=tenant.headers,
        )
        assert reply.status_code == 202, reply.text
        queued = await next_of(stream, "message.created")
        assert queued.data == {"conversation_id": conversation_id, "message_id": reply.json()["id"]}


async def test_the_events_need_a_login_or_an_api_key(
    live: LiveServer, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await client.get("/api/v1/events")).status_code == 401
    bad_key = {"Authorization": "Bearer nope"}
    assert (await client.get("/api/v1/events", headers=bad_key)).status_code == 401
    async with live.client() as http:
        login = await http.post(
            "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
        )
        assert login.status_code == 200, login.text
        async with live.events(http, {}) as stream:  # the session cookie, as the inbox page sends it
            assert (await stream.next()).event == "ready"


async def test_a_stream_ends_when_the_client_goes(live: LiveServer, tenant: Tenant) -> None:
    async with live.client() as http, live.events(http, tenant.headers) as stream:
        await stream.next()
    await live.idle()  # the server finished the response: no stream is left running


async def test_a_stream_ends_when_the_app_shuts_down(settings: Settings, tenant: Tenant) -> None:
    app: FastAPI = create_app(settings, migrate=False)
    async with serve(app) as server, server.client() as http, AsyncExitStack() as streams:
        async with LifespanManager(app, shutdown_timeout=10):
            stream = await streams.enter_async_context(server.events(http, tenant.headers))
            assert (await stream.next()).event == "ready"
        # The app has stopped (its broker closed): the open stream ends instead of hanging.
        assert await stream.ended()


async def test_an_automated_reply_is_announced_with_the_message_it_answers(
    app: FastAPI, deliver: Deliver, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    greeting = {
        "enabled": True,
        "reply": {"type": "text", "text": "Halo! Terima kasih sudah menghubungi kami."},
    }
    configured = await client.put(
        f"/api/v1/numbers/{tenant.number_id}/settings",
        json={"auto_reply": {"enabled": True, "greeting": greeting}},
        headers=tenant.headers,
    )
    assert configured.status_code == 200, configured.text
    broker = app.state.broker
    subscription = broker.subscribe(
        tenant.workspace_id, last_event_id=await broker.latest_id(tenant.workspace_id)
    )
    await deliver(text("wamid.auto1", "Halo"))
    async with asyncio.timeout(5):
        events = [await anext(subscription) for _ in range(3)]
    await subscription.aclose()
    assert [e.type for e in events] == ["message.created", "message.created", "conversation.updated"]
    inbound, reply = events[0].data, events[1].data
    assert inbound["conversation_id"] == reply["conversation_id"] == events[2].data["conversation_id"]
    shown = await client.get(f"/api/v1/messages/{reply['message_id']}", headers=tenant.headers)
    assert shown.json()["is_automated"] is True


async def test_events_the_batch_path_leaves_to_the_per_event_path_are_announced_too(
    app: FastAPI, deliver: Deliver, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    sent = await factories.create_outbound_message(sessionmaker, tenant, wamid="wamid.out2")
    message = text("wamid.mixed1", "Halo")
    status = factories.status_update("wamid.out2", "read", timestamp=int(time.time()))
    for body in (message, status):
        # A change the set-wise batch path does not handle sends the whole event down the per-event path.
        body["entry"][0]["changes"].append({"field": "some_future_field", "value": {}})
    broker = app.state.broker
    subscription = broker.subscribe(
        tenant.workspace_id, last_event_id=await broker.latest_id(tenant.workspace_id)
    )
    await deliver(message, status)
    async with asyncio.timeout(5):
        events = [await anext(subscription) for _ in range(3)]
    await subscription.aclose()
    by_type = {e.type: e.data for e in events}
    assert set(by_type) == {"message.created", "conversation.updated", "message.updated"}
    assert by_type["message.updated"]["message_id"] == sent
    assert by_type["message.updated"]["status"] == "read"


async def test_with_redis_configured_events_go_through_redis_streams(
    settings: Settings, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    async with redis_database() as url:
        app = create_app(settings.model_copy(update={"redis_url": url}), migrate=False)
        async with LifespanManager(app), serve(app) as server, server.client() as http:
            assert isinstance(app.state.broker, RedisBroker)
            async with server.events(http, tenant.headers) as stream:
                assert (await stream.next()).event == "ready"
                poster = WebhookPoster(http, sessionmaker, settings)
                assert (await poster.post(text("wamid.redis1", "Halo"))).status_code == 200
                worker = WebhookWorker(sessionmaker, settings, broker=app.state.broker)
                while await worker.process_due_batch():
                    pass
                created = await stream.next()
                assert created.event == "message.created"
                assert parse_id(created.id or "") is not None  # a stream id
