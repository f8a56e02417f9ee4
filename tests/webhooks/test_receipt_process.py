"""Receipts committed by a child process of the server (LAYANIFY_WEBHOOK_WRITER=process, decision 39)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from layanify import config
from layanify.app import create_app
from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.webhooks.ingest import EventWriter
from layanify.webhooks.receipt_process import ReceiptProcess
from tests.conftest import WebhookPoster, fixture_bytes, make_settings, stored_events


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The app under test commits its receipts in a child process, on either database."""
    return make_settings(database_url, webhook_writer="process")


def numbered(count: int) -> list[bytes]:
    return [fixture_bytes("text").replace(b"Halo", f"Halo {i}".encode()) for i in range(count)]


def writer_of(app: FastAPI) -> EventWriter:
    writer: EventWriter = app.state.event_writer
    return writer


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_every_acknowledged_webhook_is_committed_by_the_child_before_its_200(
    app: FastAPI, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    child = writer_of(app).process_id
    assert child is not None
    assert child != os.getpid()
    bodies = numbered(60)
    responses = await asyncio.gather(*(webhook.post(body) for body in bodies))  # batched together
    assert [r.status_code for r in responses] == [200] * len(bodies)
    events = await stored_events(sessionmaker)
    assert sorted(event.body for event in events) == sorted(bodies)  # the raw bytes, each once
    assert {event.status for event in events} == {"pending"}


async def test_stored_bodies_are_processed_like_any_other(
    webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("text", "image", "status_delivered")
    events = await stored_events(sessionmaker)
    assert [event.status for event in events] == ["processed"] * 3


async def test_a_killed_child_is_replaced_and_nothing_acknowledged_is_lost(
    app: FastAPI, client: httpx.AsyncClient, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    writer = writer_of(app)
    first, second = numbered(2)
    assert (await webhook.post(first)).status_code == 200
    killed = writer.process_id
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    await until(lambda: writer.process_id is None)  # the server noticed
    assert (await webhook.post(second)).status_code == 200  # a new child commits it
    assert writer.process_id not in (None, killed)
    assert sorted(event.body for event in await stored_events(sessionmaker)) == sorted([first, second])
    ready = await client.get("/readyz")
    assert ready.json()["checks"]["webhook_writer"] == "ok"


async def test_ctrl_c_in_the_terminal_leaves_the_child_to_the_server(
    app: FastAPI, webhook: WebhookPoster, sessionmaker: Sessionmaker
) -> None:
    """SIGINT reaches the whole process group; the server still needs its child while it drains."""
    child = writer_of(app).process_id
    assert child is not None
    os.kill(child, signal.SIGINT)
    await asyncio.sleep(0.3)
    assert writer_of(app).process_id == child
    assert (await webhook.post("text")).status_code == 200
    assert len(await stored_events(sessionmaker)) == 1


async def test_a_child_that_cannot_start_means_503_and_not_ready_until_it_can(
    settings: Settings, sessionmaker: Sessionmaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ReceiptProcess, "MODULE", "layanify.no_such_module")  # exits at once
    monkeypatch.setattr(ReceiptProcess, "RETRY_SECONDS", 0.2)
    application = create_app(settings, migrate=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            webhook = WebhookPoster(client, sessionmaker, settings)
            refused = await webhook.post("text")
            assert refused.status_code == 503  # Meta retries
            assert refused.json()["error"]["code"] == "unavailable"
            await asyncio.sleep(0.25)
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert "could not be started" in not_ready.json()["checks"]["webhook_writer"]
            assert await stored_events(sessionmaker) == []

            monkeypatch.setattr(ReceiptProcess, "MODULE", "layanify.webhooks.receipt_process")
            await asyncio.sleep(0.25)
            assert (await webhook.post("text")).status_code == 200  # the next batch starts it
            assert (await client.get("/readyz")).status_code == 200
            assert len(await stored_events(sessionmaker)) == 1


async def test_stopping_the_server_commits_what_is_queued_and_ends_the_child(
    settings: Settings, sessionmaker: Sessionmaker
) -> None:
    application = create_app(settings, migrate=False)
    bodies = numbered(20)
    async with LifespanManager(application):
        writer = writer_of(application)
        child = writer.process_id
        assert child is not None
        stores = [asyncio.create_task(writer.store(body)) for body in bodies]
        await asyncio.sleep(0)  # queued, not yet committed
    assert all(task.done() and not task.exception() for task in stores)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # exited (and reaped)
    assert sorted(event.body for event in await stored_events(sessionmaker)) == sorted(bodies)


def test_auto_uses_a_child_on_sqlite_with_two_cores_and_never_on_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sqlite = "sqlite+aiosqlite:///./data/x.db"
    postgres = "postgresql+asyncpg://u@h/db"
    monkeypatch.setattr(config, "usable_cpus", lambda: 2)
    assert Settings(database_url=sqlite).webhook_writer_process()
    assert not Settings(database_url=postgres).webhook_writer_process()
    assert Settings(database_url=postgres, webhook_writer="process").webhook_writer_process()
    assert not Settings(database_url=sqlite, webhook_writer="in-process").webhook_writer_process()
    monkeypatch.setattr(config, "usable_cpus", lambda: 1)
    assert not Settings(database_url=sqlite).webhook_writer_process()  # one core: no gain, only hops


def test_the_usable_cpus_are_counted_where_the_os_cannot_say_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS
    assert config.usable_cpus() == (os.cpu_count() or 1)
