"""Two outbox workers (two engines, as two processes would have) never send the same message twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import func, select

from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.messaging import service
from layanify.messaging.models import Message
from layanify.messaging.tasks import OutboxWorker
from layanify.ratelimit import SendPacer, parse_rate, storage_for
from layanify.simulator import Simulator
from layanify.whatsapp.client import GraphClient
from tests.conftest import Tenant, make_settings

COUNT = 300


class CountingTransport(httpx.AsyncBaseTransport):
    """The simulator in-process, counting the sends that went through this worker's client."""

    def __init__(self, simulator: Simulator) -> None:
        self._inner = httpx.ASGITransport(app=simulator.app)
        self.sends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/messages"):
            self.sends += 1
        return await self._inner.handle_async_request(request)


async def queue_templates(sessionmaker: Sessionmaker, tenant: Tenant) -> None:
    """COUNT templates to COUNT different customers (so only the number's limit paces them)."""
    async with unit_of_work(sessionmaker) as session:
        for i in range(COUNT):
            await service.queue_message(
                session,
                workspace_id=tenant.workspace_id,
                user_id=tenant.user_id,
                number_id=tenant.number_id,
                to=f"+62812{i:07d}",
                content={"type": "template", "name": "hello_world"},
                default_region="ID",
            )


async def count_by_status(sessionmaker: Sessionmaker) -> dict[str, int]:
    async with unit_of_work(sessionmaker) as session:
        rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(n) for status, n in rows.all()}


async def unsent(sessionmaker: Sessionmaker) -> int:
    statuses = await count_by_status(sessionmaker)
    return statuses.get("queued", 0) + statuses.get("sending", 0)


async def test_two_workers_send_every_message_exactly_once(
    database_url: str, tenant: Tenant, simulator: Simulator, sessionmaker: Sessionmaker
) -> None:
    settings: Settings = make_settings(
        database_url,
        rate_limit_per_second=1000,
        outbox_concurrency=32,
        outbox_batch_size=50,
        outbox_poll_seconds=0.02,
    )
    await queue_templates(sessionmaker, tenant)
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())
    engines = [create_engine(settings) for _ in range(2)]
    transports = [CountingTransport(simulator) for _ in range(2)]
    clients = [
        GraphClient(base_url="http://sim.test", version="v23.0", http=httpx.AsyncClient(transport=transport))
        for transport in transports
    ]
    gate = WriteGate(enabled=settings.is_sqlite)  # two processes on SQLite would wait in its busy handler
    workers = [
        OutboxWorker(
            create_sessionmaker(engine),
            settings,
            keyring,
            client,
            SendPacer(storage_for(None), recipient_rate=parse_rate("10 per minute")),
            name=f"outbox-{i}",
            gate=gate,
        )
        for i, (engine, client) in enumerate(zip(engines, clients, strict=True))
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        async with asyncio.timeout(60):
            while await unsent(sessionmaker):  # noqa: ASYNC110 - the state is in the database
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*running)
        for client in clients:
            await client.aclose()
        for engine in engines:
            await engine.dispose()
    sends = Counter(s["body"]["biz_opaque_callback_data"] for s in simulator.sent_messages)
    assert len(sends) == COUNT
    assert set(sends.values()) == {1}  # nobody got a message twice
    statuses = await count_by_status(sessionmaker)
    assert sum(statuses.get(s, 0) for s in ("sent", "delivered", "read")) == COUNT
    # Both workers took part (otherwise this would prove nothing about racing claims).
    assert all(t.sends > 0 for t in transports), [t.sends for t in transports]
    assert sum(t.sends for t in transports) == COUNT


async def test_stopping_gives_back_what_waits_for_its_turn_at_once(
    database_url: str, tenant: Tenant, simulator: Simulator, sessionmaker: Sessionmaker
) -> None:
    settings = make_settings(database_url, rate_limit_per_second=2, outbox_poll_seconds=0.02)
    async with unit_of_work(sessionmaker) as session:
        for i in range(6):
            await service.queue_message(
                session,
                workspace_id=tenant.workspace_id,
                user_id=tenant.user_id,
                number_id=tenant.number_id,
                to=f"+62812{i:07d}",
                content={"type": "template", "name": "hello_world"},
                default_region="ID",
            )
    client = GraphClient(
        base_url="http://sim.test",
        version="v23.0",
        http=httpx.AsyncClient(transport=CountingTransport(simulator)),
    )
    worker = OutboxWorker(
        sessionmaker,
        settings,
        Keyring.from_setting(settings.encryption_keys.get_secret_value()),
        client,
        SendPacer(storage_for(None), recipient_rate=parse_rate("10 per minute")),
        gate=WriteGate(enabled=settings.is_sqlite),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.7)  # at 2/s (1 s apart, paced at 1/s) the first has gone, the rest wait
    stop.set()
    async with asyncio.timeout(2):  # not the minutes the queued ones would have waited
        await running
    await client.aclose()
    async with unit_of_work(sessionmaker) as session:
        rows = (await session.execute(select(Message.status, Message.attempts).order_by(Message.id))).all()
    assert rows[0] == ("sent", 1)
    assert rows[1:] == [("queued", 0)] * 5  # back in the queue, their attempt given back
