"""SQLite receipts go to a file of their own: a worker's transaction in the main file never delays them."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import layanify.models  # noqa: F401 - every table on Base.metadata
from layanify.crypto.content import WEBHOOK_AD, open_bytes
from layanify.db.base import Base
from layanify.webhooks.ingest import ReceiptStage, SqliteReceiptFile, receipts_file

BODY = b'{"entry": []}'


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A main SQLite file with the product's tables, in WAL mode."""
    path = tmp_path / "layanify.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    return path


def hold_write_lock(path: Path, started: threading.Event, release: threading.Event) -> None:
    """Another process's transaction: holds the file's write lock until `release` is set."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("BEGIN IMMEDIATE")
    started.set()
    release.wait(10)
    connection.execute("COMMIT")
    connection.close()


def staged(database: Path) -> list[tuple[int, bytes]]:
    with sqlite3.connect(receipts_file(database)) as connection:
        return [
            (int(i), bytes(b)) for i, b in connection.execute("SELECT id, body FROM received ORDER BY id")
        ]


def test_the_receipts_file_sits_beside_the_database() -> None:
    assert receipts_file(Path("data/layanify.db")) == Path("data/layanify-receipts.db")


async def test_a_worker_holding_the_main_files_lock_does_not_delay_receipts(database: Path) -> None:
    receipts = SqliteReceiptFile(database)
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(database, started, release))
    holder.start()
    started.wait()
    try:
        ids = await receipts.insert([(datetime.now(UTC), BODY)] * 3)
        assert holder.is_alive()  # committed while the main file was still locked
    finally:
        release.set()
        holder.join()
        receipts.close()
    assert ids == [1, 2, 3]
    assert [i for i, _ in staged(database)] == [1, 2, 3]
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM webhook_events").fetchone() == (0,)


async def test_receipts_wait_for_a_hand_over_in_the_receipts_file_then_commit(database: Path) -> None:
    receipts = SqliteReceiptFile(database)
    await receipts.insert([(datetime.now(UTC), BODY)])  # creates the file
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(receipts_file(database), started, release))
    holder.start()
    started.wait()
    stored = asyncio.ensure_future(receipts.insert([(datetime.now(UTC), BODY)] * 2))
    await asyncio.sleep(0.2)
    assert not stored.done()  # it waits for the other transaction instead of failing or writing beside it
    release.set()
    assert await stored == [2, 3]
    holder.join()
    receipts.close()
    # How promptly it gets in afterwards (polling, not SQLite's busy handler, which sleeps up to 100 ms
    # at a time) is a speed, measured in bench/webhook_ingest.py, not asserted here.


async def test_a_lock_held_too_long_fails_the_batch_and_stores_nothing(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteReceiptFile, "BUSY_SECONDS", 0.05)
    receipts = SqliteReceiptFile(database)
    assert await receipts.insert([(datetime.now(UTC), BODY)]) == [1]
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(receipts_file(database), started, release))
    holder.start()
    started.wait()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await receipts.insert([(datetime.now(UTC), BODY)])
    finally:
        release.set()
        holder.join()
    assert await receipts.insert([(datetime.now(UTC), BODY)]) == [2]  # and it recovers
    receipts.close()
    assert [i for i, _ in staged(database)] == [1, 2]


async def test_a_batch_larger_than_one_statement_keeps_every_body_with_its_id(database: Path) -> None:
    receipts = SqliteReceiptFile(database)
    count = SqliteReceiptFile.ROWS_PER_STATEMENT * 2 + 7  # three statements in one transaction
    bodies = [b'{"entry": [], "n": %d}' % i for i in range(count)]
    now = datetime.now(UTC)
    first = await receipts.insert([(now, BODY)])
    ids = await receipts.insert([(now, body) for body in bodies])
    receipts.close()
    assert first == [1]
    assert ids == list(range(2, count + 2))
    stored = dict(staged(database))
    assert [open_bytes(stored[event_id], WEBHOOK_AD) for event_id in ids] == bodies


async def test_ids_continue_above_every_event_ever_stored_in_either_file(database: Path) -> None:
    with sqlite3.connect(database) as connection:  # events from before the receipts file existed
        connection.execute(
            "INSERT INTO webhook_events (id, received_at, body, status, attempts, next_attempt_at)"
            " VALUES (41, '2026-11-01 00:00:00.000000', x'00', 'processed', 1, '2026-11-01 00:00:00.000000')"
        )
    receipts = SqliteReceiptFile(database)
    assert await receipts.insert([(datetime.now(UTC), BODY)] * 2) == [42, 43]
    stage = ReceiptStage(receipts_file(database))
    waiting, _ = stage.read(10, after=0)
    assert [row[0] for row in waiting] == [42, 43]
    stage.forget(43)  # handed over; and the main file lost its newest events meanwhile
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM webhook_events")
    assert staged(database) == []
    assert await receipts.insert([(datetime.now(UTC), BODY)]) == [44]  # never an id given before
    receipts.close()
