"""The SQLite receipt writer waits for another process's transaction without oversleeping."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import layanify.models  # noqa: F401 - every table on Base.metadata
from layanify.crypto.content import WEBHOOK_AD, open_bytes
from layanify.db.base import Base
from layanify.webhooks.ingest import SqliteReceiptFile


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return path


def hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    """Another process's worker: a write transaction held for `seconds`."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


async def test_receipts_commit_right_after_another_writer_lets_go(events_file: Path) -> None:
    receipts = SqliteReceiptFile(events_file)
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(events_file, 0.3, started))
    holder.start()
    started.wait()
    begun = time.monotonic()
    ids = await receipts.insert([(datetime.now(UTC), b'{"entry": []}')] * 3)
    waited = time.monotonic() - begun
    holder.join()
    receipts.close()
    assert ids == [1, 2, 3]
    assert waited >= 0.25  # it waited for the other transaction instead of failing or writing beside it
    # How promptly it gets in afterwards (polling, not SQLite's busy handler, which sleeps up to 100 ms
    # at a time) is a speed, measured in bench/webhook_ingest.py's "churning" run, not asserted here.
    with sqlite3.connect(events_file) as connection:
        assert connection.execute("SELECT count(*), min(status) FROM webhook_events").fetchone() == (
            3,
            "pending",
        )


async def test_a_lock_held_too_long_fails_the_batch_and_stores_nothing(
    events_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteReceiptFile, "BUSY_SECONDS", 0.05)
    receipts = SqliteReceiptFile(events_file)
    started = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(events_file, 0.3, started))
    holder.start()
    started.wait()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await receipts.insert([(datetime.now(UTC), b'{"entry": []}')])
    holder.join()
    assert await receipts.insert([(datetime.now(UTC), b'{"entry": []}')]) == [1]  # and it recovers
    receipts.close()
    await asyncio.sleep(0)


async def test_a_batch_larger_than_one_statement_keeps_every_body_with_its_id(events_file: Path) -> None:
    receipts = SqliteReceiptFile(events_file)
    count = SqliteReceiptFile.ROWS_PER_STATEMENT * 2 + 7  # three statements in one transaction
    bodies = [b'{"entry": [], "n": %d}' % i for i in range(count)]
    now = datetime.now(UTC)
    first = await receipts.insert([(now, b'{"entry": []}')])
    ids = await receipts.insert([(now, body) for body in bodies])
    receipts.close()
    assert first == [1]
    assert ids == list(range(2, count + 2))
    with sqlite3.connect(events_file) as connection:
        stored = dict(connection.execute("SELECT id, body FROM webhook_events WHERE id > 1").fetchall())
    assert [open_bytes(stored[event_id], WEBHOOK_AD) for event_id in ids] == bodies
