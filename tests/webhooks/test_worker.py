"""The worker: retries with backoff, failures shown with their error, replay, and no double processing."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message, MessageStatusEvent
from layanify.numbers.models import MessageTemplate
from layanify.webhooks import batch, service, tasks
from layanify.webhooks.models import WebhookEvent
from layanify.webhooks.tasks import WebhookWorker
from tests import factories
from tests.conftest import RecordingLog, Tenant, WebhookPoster, database_locked, statements


async def events(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, object]]:
    response = await client.get("/api/v1/webhooks/events", headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


async def all_events(sessionmaker: Sessionmaker) -> list[WebhookEvent]:
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars())


async def make_due(sessionmaker: Sessionmaker) -> None:
    """Skip the backoff wait (the schedule itself is asserted separately)."""
    async with unit_of_work(sessionmaker) as session:
        await session.execute(update(WebhookEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def message_count(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


@pytest.fixture
def per_event_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every batch down the per-event path, where failures are injected through HANDLERS."""

    monkeypatch.setattr(batch, "process_batch", nothing_batchable)


async def nothing_batchable(session: object, events: list[tuple[int, bytes, object]]) -> object:
    """A set-wise pass that leaves every event to the per-event path."""
    return {}, [event_id for event_id, _, _ in events]


@pytest.mark.usefixtures("per_event_only")
async def test_failure_is_retried_with_backoff_and_then_succeeds(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.HANDLERS["messages"]
    calls = 0

    async def flaky(*args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("lost the database connection")
        await real(*args)  # type: ignore[arg-type]

    monkeypatch.setitem(service.HANDLERS, "messages", flaky)
    webhook.settings = webhook.settings.model_copy(update={"worker_retry_base_seconds": 60})
    assert (await webhook.post("text")).status_code == 200
    before = utcnow()
    await webhook.process()
    [event] = await all_events(sessionmaker)
    assert event.status == "pending"
    assert event.attempts == 1
    assert event.last_error == "RuntimeError: lost the database connection"
    assert event.next_attempt_at > before + timedelta(seconds=45)  # waits its backoff (60 s ± 20%)
    assert await message_count(sessionmaker) == 0  # the failed attempt left nothing half-written

    await make_due(sessionmaker)
    await webhook.process()
    [event] = await all_events(sessionmaker)
    assert (event.status, event.attempts, event.last_error) == ("processed", 2, None)
    assert await message_count(sessionmaker) == 1


@pytest.mark.usefixtures("per_event_only")
async def test_event_that_keeps_failing_is_marked_failed_with_its_error_and_can_be_replayed(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise ValueError("cannot parse this")

    webhook.settings = webhook.settings.model_copy(update={"worker_max_attempts": 3})
    real = service.HANDLERS["messages"]
    monkeypatch.setitem(service.HANDLERS, "messages", broken)
    await webhook.post("text")
    for _ in range(3):
        await webhook.process()
        await make_due(sessionmaker)
    [event] = await all_events(sessionmaker)
    assert (event.status, event.attempts) == ("failed", 3)
    await webhook.process()
    assert (await all_events(sessionmaker))[0].attempts == 3  # given up: no more attempts

    # The owner sees the failure and its error in the webhook log, fixes the cause, and replays it.
    [shown] = await events(webhook.client, tenant)
    assert (shown["status"], shown["last_error"]) == ("failed", "ValueError: cannot parse this")
    monkeypatch.setitem(service.HANDLERS, "messages", real)
    replay = await webhook.client.post(f"/api/v1/webhooks/events/{event.id}/replay", headers=tenant.headers)
    assert replay.status_code == 202
    await webhook.process()
    [event] = await all_events(sessionmaker)
    assert event.status == "processed"
    assert await message_count(sessionmaker) == 1


async def test_one_poisoned_event_does_not_hold_up_the_rest_of_its_batch(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.HANDLERS["messages"]

    async def poisoned(session: object, change: object, received_at: object, outcome: object) -> None:
        if "racun" in str(getattr(change, "value", "")):
            raise ValueError("this event cannot be applied")
        await real(session, change, received_at, outcome)  # type: ignore[arg-type]

    async def batch_fails(*args: object) -> object:
        raise RuntimeError("the set-wise pass failed")

    monkeypatch.setattr(batch, "process_batch", batch_fails)
    monkeypatch.setitem(service.HANDLERS, "messages", poisoned)
    for i, text in enumerate(["satu", "racun", "tiga"]):
        await webhook.post(factories.text_message(f"wamid.poison-{i}", text, wa_id=f"6281777000{i}"))
    await webhook.process()
    stored = await all_events(sessionmaker)
    assert [(e.status, e.last_error) for e in stored] == [
        ("processed", None),
        ("pending", "ValueError: this event cannot be applied"),
        ("processed", None),
    ]
    assert await message_count(sessionmaker) == 2


async def test_batch_path_and_per_event_path_store_the_same(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["batch_multi", "text", "image", "text", "status_read", "reaction", "text_reply_context"]
    for name in names:
        await webhook.post(name)
    await webhook.process()  # one batch, set-wise
    set_wise = (await webhook.client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    set_wise_events = await all_events(sessionmaker)

    async with unit_of_work(sessionmaker) as session:
        await session.execute(delete(Message))
        await session.execute(delete(Conversation))
        await session.execute(delete(Contact))
        await session.execute(delete(MessageStatusEvent))
    monkeypatch.setattr(batch, "process_batch", nothing_batchable)
    for event in set_wise_events:
        async with unit_of_work(sessionmaker) as session:
            await service.replay_event(session, event.id, workspace_id=None)
    await webhook.process()  # the same events, one at a time
    per_event = (await webhook.client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    per_event_events = await all_events(sessionmaker)

    def comparable(conversations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in c.items() if k not in ("id", "created_at", "contact")}
            | {"contact": {k: c["contact"][k] for k in ("wa_id", "profile_name", "user_id")}}
            for c in conversations
        ]

    assert comparable(per_event) == comparable(set_wise)
    assert [e.summary["counts"] for e in per_event_events] == [  # type: ignore[index]
        e.summary["counts"]
        for e in set_wise_events  # type: ignore[index]
    ]


async def test_replay_through_the_api_is_idempotent(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    [event] = await events(webhook.client, tenant)
    response = await webhook.client.post(
        f"/api/v1/webhooks/events/{event['id']}/replay", headers=tenant.headers
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    await webhook.process()
    assert await message_count(sessionmaker) == 1
    detail = (
        await webhook.client.get(f"/api/v1/webhooks/events/{event['id']}", headers=tenant.headers)
    ).json()
    assert detail["status"] == "processed"
    assert detail["summary"]["counts"] == {"duplicate_messages": 1}
    assert detail["payload"]["entry"][0]["id"] == factories.FIXTURE_WABA_ID


async def test_redelivered_webhook_stores_the_message_once(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    await webhook.deliver("text", "text", "text")
    assert await message_count(sessionmaker) == 1
    conversations = (await webhook.client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    assert conversations[0]["unread_count"] == 1


async def test_concurrent_workers_never_process_an_event_twice(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, settings: Settings, tenant: Tenant
) -> None:
    total = 60
    for i in range(total):
        body = factories.text_message(
            f"wamid.concurrent-{i}", f"pesan {i}", wa_id=f"62812000{i:04d}", timestamp=1764000000 + i
        )
        assert (await webhook.post(body)).status_code == 200
    small_batches = settings.model_copy(update={"worker_batch_size": 5})
    workers = [WebhookWorker(sessionmaker, small_batches, name=f"w{i}") for i in range(4)]

    async def drain(worker: WebhookWorker) -> int:
        claimed = 0
        while n := await worker.process_due_batch():
            claimed += n
        return claimed

    claimed = await asyncio.gather(*(drain(w) for w in workers))
    assert sum(claimed) == total  # every event claimed exactly once across the workers
    stored = await all_events(sessionmaker)
    assert {(e.status, e.attempts) for e in stored} == {("processed", 1)}
    assert await message_count(sessionmaker) == total


async def test_in_process_worker_picks_up_events_as_they_arrive(
    settings: Settings, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    from asgi_lifespan import LifespanManager

    from layanify.app import create_app
    from tests.conftest import WebhookPoster as Poster

    application = create_app(settings.model_copy(update={"in_process_workers": 2}), migrate=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            poster = Poster(http, sessionmaker, settings)
            assert (await poster.post("text")).status_code == 200
            for _ in range(100):
                if await message_count(sessionmaker) == 1:
                    break
                await asyncio.sleep(0.05)
            assert await message_count(sessionmaker) == 1


async def test_in_process_worker_lets_receipts_go_first_but_not_forever(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, settings: Settings, tenant: Tenant
) -> None:
    await webhook.post("text")
    receipts_waiting = True
    worker = WebhookWorker(
        sessionmaker,
        settings.model_copy(update={"worker_max_defer_seconds": 0.3}),
        receipts_busy=lambda: receipts_waiting,
    )
    stop = asyncio.Event()
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.15)
    assert await message_count(sessionmaker) == 0  # receipts are still waiting: they go first
    async with asyncio.timeout(5):
        while not await message_count(sessionmaker):  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)
    assert asyncio.get_running_loop().time() - started >= 0.3  # …but only for the bounded wait
    stop.set()
    await task


async def test_events_the_set_wise_pass_cannot_apply_go_one_by_one_and_the_rest_stay_set_wise(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch.process_batch
    left_over: list[list[int]] = []

    async def spy(session: Any, events: Any) -> Any:
        outcomes, left = await real(session, events)
        left_over.append(left)
        return outcomes, left

    monkeypatch.setattr(batch, "process_batch", spy)
    for name in ("text", "template_status_update", "system_user_changed_user_id", "image"):
        await webhook.post(name)
    await webhook.process()
    stored = await all_events(sessionmaker)
    assert [e.status for e in stored] == ["processed"] * 4
    assert left_over[0] == [stored[1].id, stored[2].id]  # the template update and the senderless message
    assert await message_count(sessionmaker) == 2
    async with unit_of_work(sessionmaker) as session:
        template = (await session.execute(select(MessageTemplate))).scalar_one()
    assert template.status == "APPROVED"


async def test_a_batch_moves_every_conversation_on_in_one_update(
    webhook: WebhookPoster, engine: AsyncEngine, tenant: Tenant
) -> None:
    """A batch's conversations change different columns (a message in the same second leaves the last
    activity time as it was); they are still written together, and each gets its own values."""
    start = 1764000000
    customers = [f"62813000{i:04d}" for i in range(6)]
    for i, wa_id in enumerate(customers):
        assert (
            await webhook.post(factories.text_message(f"wamid.first-{i}", "halo", wa_id=wa_id))
        ).status_code == 200
    await webhook.process()

    for i, wa_id in enumerate(customers):
        later = start + (60 if i % 2 else 0)  # even customers write again within the same second
        body = factories.text_message(f"wamid.second-{i}", f"lagi {i}", wa_id=wa_id, timestamp=later)
        assert (await webhook.post(body)).status_code == 200
    with statements(engine, "UPDATE conversations") as updates:
        assert await webhook.process() == 6

    assert len(updates) == 1
    listed = (await webhook.client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    seen = {c["contact"]["wa_id"]: c for c in listed}
    for i, wa_id in enumerate(customers):
        conversation = seen[wa_id]
        later = start + (60 if i % 2 else 0)
        assert conversation["last_message_preview"] == f"lagi {i}"
        assert conversation["unread_count"] == 2
        assert conversation["last_message_at"] == datetime.fromtimestamp(later, UTC).isoformat().replace(
            "+00:00", "Z"
        )
        expires = datetime.fromtimestamp(later, UTC) + timedelta(hours=24)
        assert conversation["window_expires_at"] == expires.isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def processing_locked_out(engine: AsyncEngine) -> AsyncIterator[None]:
    """Another connection holds a lock every message write needs, and receipts do not: SQLite's main-file
    write lock (receipts have a file of their own), PostgreSQL's `messages` table. A long query, a
    migration or an administrator's open transaction do this in real life."""
    if engine.dialect.name == "sqlite":
        assert engine.url.database
        connection = sqlite3.connect(engine.url.database, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    async with engine.connect() as held:
        await held.execute(sql("LOCK TABLE messages IN EXCLUSIVE MODE"))
        yield
        await held.rollback()


async def test_processing_held_up_by_a_lock_keeps_acknowledging_and_resumes_without_a_failed_attempt(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, engine: AsyncEngine, tenant: Tenant
) -> None:
    worker = WebhookWorker(sessionmaker, webhook.settings)
    async with processing_locked_out(engine):
        for n in range(3):
            response = await webhook.post(factories.text_message(f"wamid.locked{n}", f"pesan {n}"))
            assert response.status_code == 200, response.text  # receiving does not wait for the lock
        batch_run = asyncio.create_task(worker.process_due_batch())
        await asyncio.sleep(0.5)
        assert not batch_run.done()  # the batch waits for the lock (on SQLite, up to its 30 s busy timeout) …
    assert await asyncio.wait_for(batch_run, 10) == 3  # … and goes on when it is let go
    stored = await all_events(sessionmaker)
    assert [(e.status, e.attempts, e.last_error) for e in stored] == [("processed", 1, None)] * 3
    assert await message_count(sessionmaker) == 3


@pytest.mark.parametrize(("failure", "level"), [("busy", "warning"), ("bug", "exception")])
async def test_a_failed_batch_is_logged_by_kind_and_the_worker_goes_on(
    settings: Settings,
    sessionmaker: Sessionmaker,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    level: str,
) -> None:
    """A database locked past the busy timeout is one warning line (the worker tries again by itself);
    a bug is logged with its traceback (`exception`). Either way the worker keeps running."""
    error = database_locked() if failure == "busy" else KeyError("bug")
    worker = WebhookWorker(sessionmaker, settings)
    passes = 0
    stop = asyncio.Event()

    async def failing() -> int:
        nonlocal passes
        passes += 1
        if passes == 2:
            stop.set()
        raise error

    recorded = RecordingLog()
    monkeypatch.setattr(tasks, "log", recorded)
    monkeypatch.setattr(worker, "process_due_batch", failing)
    await asyncio.wait_for(worker.run(stop), 5)
    assert passes == 2  # it went on after the first failure
    failures = [call for call in recorded.calls if call[1] == "webhook_worker_batch_failed"]
    assert failures == [(level, "webhook_worker_batch_failed")] * 2
