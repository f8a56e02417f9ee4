"""Reading (and resetting) the benchmark database from outside the server: SQLite or PostgreSQL.

The benchmark never asks the server how it is doing: it reads `webhook_events` and `messages` itself,
through its own connection, so what it reports is what is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from layanify.config import Settings
from layanify.crypto import content
from layanify.db.engine import create_engine
from layanify.webhooks.ingest import EventWriter, open_receipts, receipts_file

DISCARD_NOTE = "bench: discarded between phases"


async def store_pending(database_url: str, bodies: list[bytes]) -> None:
    """Store the bodies as pending events through the product's EventWriter (straight into
    `webhook_events`: no receipts file), all at once, as a preloaded backlog."""
    engine = create_engine(Settings(database_url=database_url))
    writer = EventWriter(engine, max_batch=512, max_queue=len(bodies) + 1)
    await writer.start()
    try:
        await asyncio.gather(*(writer.store(body) for body in bodies))
    finally:
        await writer.stop()
        await engine.dispose()


@functools.cache
def _cipher() -> content.ContentCipher:
    """The server's content keyring (the same settings: environment, .env): bodies are stored sealed."""
    return content.configure_from(Settings())


def stored_lengths(body: bytes) -> tuple[int, int]:
    """A body's length in the clear and sealed (sealing adds a fixed header and the GCM tag)."""
    _cipher()
    return len(body), len(body) + len(content.seal_bytes(b"", content.WEBHOOK_AD))


def clear_body(stored: bytes) -> bytes:
    """A stored body in the clear (bodies are sealed unless content encryption is off)."""
    if stored[:1] in (b"{", b"["):
        return stored
    _cipher()
    return content.open_bytes(stored, content.WEBHOOK_AD)


def is_stored_form(stored: bytes, body: bytes) -> bool:
    """The stored bytes are this body, in the clear or sealed."""
    _cipher()
    return stored == body or content.open_bytes(stored, content.WEBHOOK_AD) == body


@dataclass(frozen=True, slots=True)
class Sample:
    """Progress at one instant."""

    at: float  # monotonic seconds
    max_id: int
    pending: int
    messages: int


class Inspector(ABC):
    """Queries the benchmark needs; every method reads committed state."""

    @abstractmethod
    async def sample(self, at: float) -> Sample:
        """Highest event id, pending events and stored messages."""

    @abstractmethod
    async def events(self) -> int:
        """Stored webhook events."""

    @abstractmethod
    async def pending_between(self, low: int, high: int) -> int:
        """Pending events with low < id <= high."""

    @abstractmethod
    async def lags(self, low: int, high: int) -> list[float]:
        """processed_at - received_at, in seconds, of processed events with low < id <= high."""

    @abstractmethod
    async def body_exists(self, body: bytes, after_id: int) -> bool:
        """Whether an event with exactly this body and an id above `after_id` is committed."""

    @abstractmethod
    async def discard_pending(self) -> int:
        """Mark every pending event failed (so that a phase starts with no backlog); returns how many."""

    @abstractmethod
    async def errors(self) -> tuple[int, str | None]:
        """Events whose processing failed at least once (not counting discards), and one error text."""

    @abstractmethod
    async def processed_bodies(self) -> list[bytes]:
        """Bodies of every processed event."""

    @abstractmethod
    async def inbound_wamids(self) -> list[str]:
        """wamids of every stored inbound message."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""


class SqliteInspector(Inspector):
    """sqlite3 on a worker thread, one connection, WAL readers never block the server's writer.

    Receipts are committed to the database's receipts file and moved into `webhook_events` by the
    workers (decision 35): it is attached as `stage`, and a receipt waiting there counts as stored and
    pending.
    """

    def __init__(self, path: Path) -> None:
        open_receipts(receipts_file(path)).close()  # created as the server would, if it is not there yet
        self._connection = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA busy_timeout=30000")
        self._connection.execute("ATTACH DATABASE ? AS stage", (str(receipts_file(path)),))
        self._lock = threading.Lock()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._run, sql, params)

    async def sample(self, at: float) -> Sample:
        rows = await self._query(
            "SELECT max((SELECT coalesce(max(id), 0) FROM webhook_events),"
            " (SELECT coalesce(max(id), 0) FROM stage.received)),"
            " (SELECT count(*) FROM webhook_events WHERE status = 'pending')"
            " + (SELECT count(*) FROM stage.received),"
            " (SELECT count(*) FROM messages)"
        )
        max_id, pending, messages = rows[0]
        return Sample(at, int(max_id), int(pending), int(messages))

    async def events(self) -> int:
        rows = await self._query(
            "SELECT (SELECT count(*) FROM webhook_events) + (SELECT count(*) FROM stage.received)"
        )
        return int(rows[0][0])

    async def pending_between(self, low: int, high: int) -> int:
        rows = await self._query(
            "SELECT (SELECT count(*) FROM webhook_events WHERE id > ?1 AND id <= ?2 AND status = 'pending')"
            " + (SELECT count(*) FROM stage.received WHERE id > ?1 AND id <= ?2)",
            (low, high),
        )
        return int(rows[0][0])

    async def lags(self, low: int, high: int) -> list[float]:
        rows = await self._query(
            "SELECT (julianday(processed_at) - julianday(received_at)) * 86400.0 FROM webhook_events"
            " WHERE id > ? AND id <= ? AND status = 'processed'",
            (low, high),
        )
        return [float(r[0]) for r in rows]

    async def body_exists(self, body: bytes, after_id: int) -> bool:
        rows = await self._query(
            "SELECT body FROM webhook_events WHERE id > ?1 AND length(body) IN (?2, ?3)"
            " UNION ALL SELECT body FROM stage.received WHERE id > ?1 AND length(body) IN (?2, ?3)",
            (after_id, *stored_lengths(body)),
        )
        return any(is_stored_form(bytes(r[0]), body) for r in rows)

    async def discard_pending(self) -> int:
        def discard() -> int:
            with self._lock:
                # Waiting receipts are moved as the workers would, but as discarded, then forgotten.
                through = self._connection.execute(
                    "SELECT coalesce(max(id), 0) FROM stage.received"
                ).fetchone()[0]
                moved = self._connection.execute(
                    "INSERT INTO webhook_events"
                    " (id, received_at, body, status, attempts, next_attempt_at, last_error)"
                    " SELECT id, received_at, body, 'failed', 0, received_at, ? FROM stage.received"
                    " WHERE id <= ? ON CONFLICT (id) DO NOTHING",
                    (DISCARD_NOTE, through),
                ).rowcount
                self._connection.execute("DELETE FROM stage.received WHERE id <= ?", (through,))
                cursor = self._connection.execute(
                    "UPDATE webhook_events SET status = 'failed', last_error = ? WHERE status = 'pending'",
                    (DISCARD_NOTE,),
                )
                # This discard wrote a level's worth of bodies (hundreds of MB) to both files' WALs. Fold
                # them into the database files now, so that the next level's server does not pay for
                # checkpointing the bench's own writes (measured once: 18.8k acks/s in the level after an
                # unfolded discard, 20.4-21.4k after folded ones).
                self._connection.execute("PRAGMA main.wal_checkpoint(TRUNCATE)").fetchall()
                self._connection.execute("PRAGMA stage.wal_checkpoint(TRUNCATE)").fetchall()
                return int(moved) + cursor.rowcount

        return await asyncio.to_thread(discard)

    async def errors(self) -> tuple[int, str | None]:
        rows = await self._query(
            "SELECT count(*), max(last_error) FROM webhook_events"
            " WHERE last_error IS NOT NULL AND last_error <> ?",
            (DISCARD_NOTE,),
        )
        return int(rows[0][0]), rows[0][1]

    async def processed_bodies(self) -> list[bytes]:
        return [
            bytes(r[0])
            for r in await self._query("SELECT body FROM webhook_events WHERE status = 'processed'")
        ]

    async def inbound_wamids(self) -> list[str]:
        rows = await self._query(
            "SELECT wamid FROM messages WHERE direction = 'inbound' AND wamid IS NOT NULL"
        )
        return [str(r[0]) for r in rows]

    async def close(self) -> None:
        await asyncio.to_thread(self._connection.close)


class PostgresInspector(Inspector):
    """asyncpg pool: the sampler and the durability probe query concurrently."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str) -> PostgresInspector:
        """Open a small pool on the benchmark database."""
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=4))

    async def sample(self, at: float) -> Sample:
        row = await self._pool.fetchrow(
            "SELECT (SELECT coalesce(max(id), 0) FROM webhook_events),"
            " (SELECT count(*) FROM webhook_events WHERE status = 'pending'),"
            " (SELECT count(*) FROM messages)"
        )
        assert row is not None
        return Sample(at, int(row[0]), int(row[1]), int(row[2]))

    async def events(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM webhook_events"))

    async def pending_between(self, low: int, high: int) -> int:
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM webhook_events WHERE id > $1 AND id <= $2 AND status = 'pending'",
                low,
                high,
            )
        )

    async def lags(self, low: int, high: int) -> list[float]:
        rows = await self._pool.fetch(
            "SELECT extract(epoch FROM processed_at - received_at)::float8 FROM webhook_events"
            " WHERE id > $1 AND id <= $2 AND status = 'processed'",
            low,
            high,
        )
        return [float(r[0]) for r in rows]

    async def body_exists(self, body: bytes, after_id: int) -> bool:
        rows = await self._pool.fetch(
            "SELECT body FROM webhook_events WHERE id > $1 AND octet_length(body) IN ($2, $3)",
            after_id,
            *stored_lengths(body),
        )
        return any(is_stored_form(bytes(r[0]), body) for r in rows)

    async def discard_pending(self) -> int:
        # SKIP LOCKED: the batch a worker holds right now is left to it rather than waited for.
        status = await self._pool.execute(
            "UPDATE webhook_events SET status = 'failed', last_error = $1 WHERE id IN"
            " (SELECT id FROM webhook_events WHERE status = 'pending' FOR UPDATE SKIP LOCKED)",
            DISCARD_NOTE,
        )
        # As on SQLite: this discard rewrote a level's worth of rows (hundreds of MB of WAL and dead
        # versions). Vacuum and checkpoint now, so the next level's server does not share the 2 cores with
        # an autovacuum and a checkpoint of the bench's own writes.
        await self._pool.execute("VACUUM (ANALYZE) webhook_events")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await self._pool.execute("CHECKPOINT")
        return int(status.split()[-1])

    async def errors(self) -> tuple[int, str | None]:
        row = await self._pool.fetchrow(
            "SELECT count(*), max(last_error) FROM webhook_events"
            " WHERE last_error IS NOT NULL AND last_error <> $1",
            DISCARD_NOTE,
        )
        assert row is not None
        return int(row[0]), row[1]

    async def processed_bodies(self) -> list[bytes]:
        rows = await self._pool.fetch("SELECT body FROM webhook_events WHERE status = 'processed'")
        return [bytes(r[0]) for r in rows]

    async def inbound_wamids(self) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT wamid FROM messages WHERE direction = 'inbound' AND wamid IS NOT NULL"
        )
        return [str(r[0]) for r in rows]

    async def close(self) -> None:
        await self._pool.close()


class BenchDatabase(ABC):
    """A database created fresh for one run."""

    kind: str
    url: str  # what the server's LAYANIFY_DATABASE_URL gets

    @abstractmethod
    async def reset(self) -> None:
        """Drop and recreate it, empty."""

    @abstractmethod
    async def inspector(self) -> Inspector:
        """An inspector on it (the schema must exist)."""

    @abstractmethod
    def stall_processing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold, from another connection, a lock that processing needs and receipts do not, for as long
        as the context runs: a stand-in for whatever makes processing slow in real life (a long query,
        a migration, an administrator's transaction). Reads go on."""


class SqliteDatabase(BenchDatabase):
    """A fresh file in the run's temporary directory."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite+aiosqlite:///{path}"

    async def reset(self) -> None:
        def remove() -> None:
            for database in (self.path, receipts_file(self.path)):  # the receipts wait in a file of their own
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{database}{suffix}").unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    async def inspector(self) -> Inspector:
        return SqliteInspector(self.path)

    @contextlib.asynccontextmanager
    async def stall_processing(self) -> AsyncIterator[None]:
        # The main file's write lock (receipts have a file of their own, decision 35). A worker's
        # write waits in SQLite's busy handler (30 s) and goes on when the lock is let go.
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
            yield
        finally:
            await asyncio.to_thread(connection.execute, "ROLLBACK")
            connection.close()


class PostgresDatabase(BenchDatabase):
    """`name` on the server at `admin_dsn` (a DSN without a database, e.g. postgresql://postgres@host:5432)."""

    kind = "postgres"

    def __init__(self, admin_dsn: str, name: str) -> None:
        self._admin_dsn = admin_dsn.rstrip("/")
        self._name = name
        self.dsn = f"{self._admin_dsn}/{name}"
        self.url = "postgresql+asyncpg://" + self.dsn.split("://", 1)[1]

    async def reset(self) -> None:
        connection = await asyncpg.connect(f"{self._admin_dsn}/postgres")
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{self._name}"')
        finally:
            await connection.close()

    async def drop(self) -> None:
        """Drop it (the end of a run that keeps nothing)."""
        connection = await asyncpg.connect(f"{self._admin_dsn}/postgres")
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def inspector(self) -> Inspector:
        return await PostgresInspector.connect(self.dsn)

    @contextlib.asynccontextmanager
    async def stall_processing(self) -> AsyncIterator[None]:
        # Every message a worker stores or updates waits for this lock; receipts (webhook_events) and
        # reads do not.
        connection = await asyncpg.connect(self.dsn)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
                yield
        finally:
            await connection.close()
