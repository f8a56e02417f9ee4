"""The receipt writer's signals to in-process processing: busy, a surge, and the webhook rate."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.webhooks.ingest import EventWriter


async def test_a_surge_holds_processing_back_a_moment_after_the_receipts_are_stored(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_free = asyncio.Event()

    async def slow_commit(self: EventWriter, rows: list[tuple[datetime, bytes]], *_: object) -> list[int]:
        await database_free.wait()
        return list(range(len(rows)))

    monkeypatch.setattr(EventWriter, "_insert", slow_commit)
    monkeypatch.setattr(EventWriter, "SURGE_HOLD_SECONDS", 0.3)  # wide enough for a busy test machine
    writer = EventWriter(engine)
    await writer.start()
    try:
        assert not writer.pressed()
        stores = [asyncio.create_task(writer.store(b"{}")) for _ in range(EventWriter.SURGE_WAITING)]
        await asyncio.sleep(0.01)
        assert writer.busy()
        assert writer.pressed()  # receipts waiting: processing waits
        assert writer.receipt_rate() > 0
        database_free.set()
        await asyncio.gather(*stores)
        assert not writer.busy()
        # On PostgreSQL eight receipts waiting at once was a surge: processing stays back a little longer.
        # On SQLite they wait behind the worker's own write lock, which is no surge.
        assert writer.pressed() is (engine.dialect.name != "sqlite")
        await asyncio.sleep(EventWriter.SURGE_HOLD_SECONDS * 2)
        assert not writer.pressed()
    finally:
        await writer.stop()


async def test_a_few_receipts_at_a_time_are_no_surge(engine: AsyncEngine) -> None:
    writer = EventWriter(engine)
    await writer.start()
    try:
        for _ in range(EventWriter.SURGE_WAITING * 2):
            await writer.store(b'{"entry": []}')  # one at a time, as at a moderate rate
        assert not writer.pressed()
    finally:
        await writer.stop()
