"""Group commit for webhook receipts: concurrent POSTs share one INSERT transaction.

Every request hands its raw body to the writer and waits for the commit that contains it, so no
event is acknowledged before it is durable, while the database sees one commit per batch instead of
one per request. The writer is the unit of work of this path: it alone commits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from layanify.crypto.content import seal_webhook_bodies
from layanify.db.base import utcnow
from layanify.db.session import WriteGate
from layanify.observability import get_logger
from layanify.webhooks.models import EventStatus, WebhookEvent
from layanify.webhooks.receipt_process import ReceiptProcess

log = get_logger(__name__)


class IngestUnavailable(RuntimeError):
    """The event could not be stored (database down, writer stopped or overloaded); answer 5xx."""


@dataclass(slots=True)
class _Pending:
    body: bytes
    received_at: datetime
    done: asyncio.Future[int]


class EventWriter:
    """Stores raw webhook bodies in batches; `store()` returns once the body is committed."""

    SURGE_WAITING = 8  # receipts waiting for their commit at once
    SURGE_HOLD_SECONDS = 0.02

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 512,
        max_queue: int = 20_000,
        on_stored: Callable[[], None] | None = None,
        gate: WriteGate | None = None,
        in_flight: int = 1,
        sqlite_file: Path | None = None,
        process: ReceiptProcess | None = None,
    ) -> None:
        """`in_flight` batches may commit at once (PostgreSQL overlaps them; SQLite has one writer).

        With `process`, batches are committed by that child process (decision 39). Otherwise, with
        `sqlite_file` (the SQLite database), receipts are committed to that database's receipts file
        (`SqliteReceiptFile`) on a thread of this process; otherwise (PostgreSQL) each writer task holds
        its own connection from the engine's pool.
        """
        self._engine = engine
        self._process = process
        self._sqlite = SqliteReceiptFile(sqlite_file) if sqlite_file is not None and process is None else None
        self._in_flight = 1 if sqlite_file is not None else in_flight
        self._gate = gate or WriteGate(enabled=False)
        self._max_batch = max_batch
        self._max_queue = max_queue
        # A deque and an Event rather than an asyncio.Queue: one append per receipt and one slice per
        # batch, instead of a put, a get and a task_done per receipt on the hottest path.
        self._queued: collections.deque[_Pending] = collections.deque()
        self._arrived = asyncio.Event()
        self._running = False
        self._on_stored = on_stored
        self._tasks: list[asyncio.Task[None]] = []
        self._storing = 0
        self._waiting = 0
        self._surge_at = -1e9
        # Not on SQLite: holding the worker back for a pile of waiting receipts only slowed processing down
        # there (decision 34), and still did with receipts in a file of their own: 597 against 744-828
        # messages/s processed at 1,000 arriving a second (decision 35).
        self._surge_waiting = math.inf if engine.dialect.name == "sqlite" else self.SURGE_WAITING
        self._last_received = -1e9
        self._gap = 1.0  # moving average of the time between two webhooks, in seconds

    async def start(self) -> None:
        """Start the writer tasks (and the child process, if any: should it fail, the first batch retries)."""
        if self._process is not None:
            await self._process.start()  # if it cannot start, receipts get 503 until it can (logged)
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"webhook-event-writer-{i}")
                for i in range(self._in_flight)
            ]
            for task in self._tasks:
                task.add_done_callback(self._writer_ended)
            self._running = True

    def _writer_ended(self, _: asyncio.Task[None]) -> None:
        self._running = any(not task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Store what is queued, then stop."""
        if not self._tasks:
            return
        while self.busy() and self._running:  # noqa: ASYNC110 - shutdown only; a level, not an event
            await asyncio.sleep(0.005)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._sqlite is not None:
            self._sqlite.close()
        if self._process is not None:
            await self._process.close()

    async def health(self) -> str:
        """Whether receipts can be committed now: "ok", else why not (for /readyz)."""
        if not self._running:
            return "the webhook writer is not running"
        if self._process is not None and not await self._process.start():
            return "the webhook receipt process could not be started; see the server log"
        return "ok"

    @property
    def process_id(self) -> int | None:
        """The receipt process's id, when a child process commits the receipts and runs."""
        return self._process.pid if self._process is not None else None

    def busy(self) -> bool:
        """True while receipts wait to be committed or a commit is under way."""
        return self._storing > 0 or bool(self._queued)

    def pressed(self) -> bool:
        """True while receipts are busy, and SURGE_HOLD_SECONDS after SURGE_WAITING of them waited at once.

        In-process processing defers to receipts while this holds. `busy()` alone drops to false for a
        moment between two batches even when the server is saturated, and a worker let in then takes the
        core for a whole batch: under a surge, processing got about half of the CPU and acknowledgements
        fell by a third. Many receipts waiting at once is the sign of a surge (at 1,000 webhooks/s one or
        two wait at a time), and it holds the worker back until the surge has passed. Not on SQLite.
        """
        return self.busy() or time.monotonic() - self._surge_at < self.SURGE_HOLD_SECONDS

    def receipt_rate(self) -> float:
        """Webhooks a second lately (a moving average over the last ~50 arrivals); 0 when none came in 1 s."""
        return 1.0 / self._gap if time.monotonic() - self._last_received < 1.0 else 0.0

    async def store(self, body: bytes) -> int:
        """Queue the body and wait until it is committed; returns the event id."""
        if not self._running:
            raise IngestUnavailable("the webhook writer is not running")
        if len(self._queued) >= self._max_queue:
            raise IngestUnavailable("too many webhooks waiting to be stored")
        now = time.monotonic()
        self._gap += 0.02 * (min(now - self._last_received, 1.0) - self._gap)
        self._last_received = now
        pending = _Pending(body=body, received_at=utcnow(), done=asyncio.get_running_loop().create_future())
        self._queued.append(pending)
        self._arrived.set()
        self._waiting += 1
        if self._waiting >= self._surge_waiting:
            self._surge_at = self._last_received
        try:
            return await pending.done
        finally:
            self._waiting -= 1

    async def _run(self) -> None:
        postgres = None
        if self._process is None and self._sqlite is None and self._engine.dialect.driver == "asyncpg":
            postgres = PostgresReceipts(self._engine)
        try:
            await self._serve(postgres)
        finally:
            if postgres is not None:
                await postgres.close()

    async def _serve(self, postgres: PostgresReceipts | None) -> None:
        while True:
            while not self._queued:
                self._arrived.clear()
                await self._arrived.wait()
            queued = self._queued
            batch = [queued.popleft() for _ in range(min(len(queued), self._max_batch))]
            self._storing += 1
            try:
                ids = await self._insert([(item.received_at, item.body) for item in batch], postgres)
            except Exception as exc:
                log.error(
                    "webhook_events_store_failed", count=len(batch), error=type(exc).__name__, exc_info=True
                )
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(IngestUnavailable("the event could not be stored"))
            else:
                for item, event_id in zip(batch, ids, strict=True):
                    if not item.done.done():
                        item.done.set_result(event_id)
                log.info(
                    "webhook_events_stored",
                    count=len(ids),
                    event_ids=ids if len(ids) <= 20 else [ids[0], ids[-1]],
                )
                if self._on_stored is not None:
                    self._on_stored()
            finally:
                self._storing -= 1

    async def _insert(
        self, rows: list[tuple[datetime, bytes]], postgres: PostgresReceipts | None
    ) -> list[int]:
        if self._process is not None:
            return await self._process.insert(rows)
        if postgres is not None:
            return await postgres.insert(rows)
        if self._sqlite is not None:  # its own file: no turn to wait for
            return await self._sqlite.insert(rows)
        async with self._gate.turn():
            return await self._insert_orm(rows)

    async def _insert_orm(self, rows: list[tuple[datetime, bytes]]) -> list[int]:
        """Through the ORM: any other database (an in-memory SQLite file, a non-asyncpg PostgreSQL driver)."""
        values = [
            {
                "received_at": at,
                "body": body,
                "status": EventStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": at,
            }
            for at, body in rows
        ]
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(WebhookEvent).returning(WebhookEvent.id, sort_by_parameter_order=True), values
            )
            return [row[0] for row in result]


class PostgresReceipts:
    """A writer task's own PostgreSQL connection: a whole batch in one statement, one round trip.

    Through the ORM a batch took a pool checkout with its pre-ping, BEGIN, the INSERT and COMMIT (four
    round trips, each waking the event loop) plus SQLAlchemy's per-row parameter work: about half of a
    receipt's CPU. Here the rows travel as two arrays in one statement, committed on its own (a single
    statement outside a transaction block is its own transaction), through the asyncpg connection under a
    pooled SQLAlchemy connection that this writer keeps checked out. A connection the server closed while
    idle (a restart, an idle timeout) is replaced before use; after an error during a batch the connection
    is dropped and the next batch takes a fresh one, so a restart costs at most the batch in flight (its
    requests get 503 and Meta retries), never a stuck writer.

    The ids are drawn in the statement, in input order, and returned by position, so each request learns
    its own row's id whatever order the INSERT stores them in.
    """

    SQL = (
        "WITH r AS MATERIALIZED ("
        " SELECT n, nextval(pg_get_serial_sequence('webhook_events', 'id')) AS id, t, b"
        " FROM unnest($1::timestamptz[], $2::bytea[]) WITH ORDINALITY AS u(t, b, n)"
        "), stored AS ("
        " INSERT INTO webhook_events (id, received_at, body, status, attempts, next_attempt_at)"
        " SELECT id, t, b, 'pending', 0, t FROM r"
        ") SELECT id FROM r ORDER BY n"
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._driver: Any = None  # asyncpg.Connection (asyncpg ships no type information)

    async def insert(self, rows: list[tuple[datetime, bytes]]) -> list[int]:
        """Commit the rows; returns their ids in the rows' order."""
        if self._driver is not None and self._driver.is_closed():  # the server went away while idle
            await self.close(invalidate=True)
        await self.connect()
        times = [received_at for received_at, _ in rows]
        # The ORM path seals through the column type; this one writes the stored form itself.
        bodies = seal_webhook_bodies([body for _, body in rows])
        try:
            records = await self._driver.fetch(self.SQL, times, bodies)
        except BaseException:
            await self.close(invalidate=True)
            raise
        return [record[0] for record in records]

    async def close(self, *, invalidate: bool = False) -> None:
        """Give the connection back to the pool (or, after an error, discard it)."""
        connection, self._connection, self._driver = self._connection, None, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                await connection.invalidate()
            await connection.close()

    async def connect(self) -> None:
        """Check a connection out of the engine's pool for this writer, unless it holds one."""
        if self._driver is not None:
            return
        connection = await self._engine.connect()
        try:
            raw = await connection.get_raw_connection()
        except BaseException:
            await connection.close()
            raise
        self._connection, self._driver = connection, raw.driver_connection


def receipts_file(database: Path) -> Path:
    """Where a SQLite database's webhook receipts wait for a worker: `<name>-receipts<suffix>` beside it."""
    return database.with_name(f"{database.stem}-receipts{database.suffix}")


def open_receipts(path: Path) -> sqlite3.Connection:
    """A connection with the product's pragmas; the receipts table is created on first use.

    Set up with the usual 30 s busy timeout (switching to WAL or creating the table can meet a lock), then
    none: SQLite's busy handler sleeps in steps of up to 100 ms, and `begin_immediate` polls instead.
    """
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
        connection.execute(f"PRAGMA {pragma}")
    # AUTOINCREMENT: ids are never reused, even after every row was handed over and deleted.
    connection.execute(
        "CREATE TABLE IF NOT EXISTS received"
        " (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, body BLOB NOT NULL)"
    )
    connection.execute("PRAGMA busy_timeout=0")
    return connection


def begin_immediate(connection: sqlite3.Connection, seconds: float) -> None:
    """BEGIN IMMEDIATE, retried every ≤ 0.5 ms while another connection writes, up to `seconds`."""
    deadline = time.monotonic() + seconds
    pause = 0.0001
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            locked = exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not locked or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.0005)


class SqliteReceiptFile:
    """On SQLite, receipts are committed to a file of their own: no worker's batch can make them wait.

    SQLite has one write lock per file. When receipts went into the main file, each waited for whatever
    batch a worker was committing there (tens of milliseconds; decision 32 could only trade that against
    processing lag). In `<name>-receipts.db` (`receipts_file`) the only other writer is the hand-over
    that deletes rows a worker has moved into `webhook_events` (`ReceiptStage.forget`), a short
    transaction. Workers move the rows into the main file inside their claiming transaction
    (`webhooks.service.take_received`), keeping each row's id, so an event has one id from its receipt on
    (decision 35).

    The writer's own connection is used from one thread: BEGIN IMMEDIATE, the INSERT of every row and
    COMMIT run in one call (through SQLAlchemy and aiosqlite a commit took ~2.7 ms of CPU in three thread
    round trips). Ids continue from the highest id either file has seen, so an id never names two events.
    The stored forms match what SQLAlchemy stores in `webhook_events` (timestamps as UTC
    `YYYY-MM-DD HH:MM:SS.ffffff`, the body sealed), and are copied there unchanged.
    """

    BUSY_SECONDS = 30.0
    ROWS_PER_STATEMENT = 1000  # 3 parameters a row; SQLite allows 32,766 per statement

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _statement(rows: int) -> str:
        """One INSERT of `rows` rows (placeholders only: the values are bound, never formatted in).

        One statement, not `executemany`: the sqlite3 module lets go of the GIL around every row's
        step, and taking it back from the busy event-loop thread each time cost more than the insert
        (measured: 15,300 → 16,400 receipts/s with `serve --no-workers` at 64 connections).
        """
        return "INSERT INTO received (id, received_at, body) VALUES " + ",".join(["(?, ?, ?)"] * rows)  # noqa: S608

    def __init__(self, database: Path) -> None:
        self._database = database
        self._path = receipts_file(database)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-receipts")
        self._connection: sqlite3.Connection | None = None
        self._main: sqlite3.Connection | None = None

    async def insert(self, rows: list[tuple[datetime, bytes]]) -> list[int]:
        """Commit the rows; returns their ids."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.commit, rows)

    def close(self) -> None:
        """Close the connections (on their own thread) and the thread."""
        self._executor.submit(self._close).result()
        self._executor.shutdown()

    def _close(self) -> None:
        for connection in (self._connection, self._main):
            if connection is not None:
                connection.close()
        self._connection = self._main = None

    def _last_id(self, connection: sqlite3.Connection) -> int:
        """The highest id given so far, here or in the main file (read without a lock: WAL)."""
        if self._main is None:
            self._main = sqlite3.connect(
                self._database, timeout=30, isolation_level=None, check_same_thread=False
            )
        seq = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'received'").fetchone()
        top = self._main.execute("SELECT max(id) FROM webhook_events").fetchone()[0]
        return max(seq[0] if seq else 0, top or 0)

    def commit(self, rows: list[tuple[datetime, bytes]]) -> list[int]:
        """Commit the rows on the calling thread (one thread at a time); returns their ids."""
        connection = self._connection = self._connection or open_receipts(self._path)
        begin_immediate(connection, self.BUSY_SECONDS)
        try:
            last = self._last_id(connection)
            ids = list(range(last + 1, last + 1 + len(rows)))
            # The ORM path seals through the column type; this one writes the stored form itself, the
            # whole batch at once (one nonce draw, so this thread does not wait for the GIL per body).
            sealed = seal_webhook_bodies([body for _, body in rows])
            values = [
                (event_id, received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), body)
                for event_id, (received_at, _), body in zip(ids, rows, sealed, strict=True)
            ]
            for start in range(0, len(values), self.ROWS_PER_STATEMENT):
                chunk = values[start : start + self.ROWS_PER_STATEMENT]
                flat = [value for row in chunk for value in row]
                connection.execute(self._statement(len(chunk)), flat)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return ids


class ReceiptStage:
    """The receipts file as the workers see it: read the waiting rows, forget the ones moved.

    One per file and process (`at`), its connection shared by the threads `asyncio.to_thread` runs it on.
    """

    BUSY_SECONDS = 30.0
    _known: dict[Path, ReceiptStage] = {}  # noqa: RUF012 - a per-process registry, by file
    _known_lock = threading.Lock()

    @classmethod
    def at(cls, database: Path) -> ReceiptStage:
        """The receipts of the SQLite database `database`."""
        with cls._known_lock:
            stage = cls._known.get(database)
            if stage is None:
                stage = cls._known[database] = cls(receipts_file(database))
            return stage

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _use(self) -> sqlite3.Connection | None:
        if self._connection is None and self.path.exists():
            self._connection = open_receipts(self.path)
        return self._connection

    def read(self, limit: int, after: int) -> tuple[list[tuple[int, str, bytes]], bool]:
        """Up to `limit` receipts with ids above `after`, oldest first (id, received_at as stored, sealed
        body), and whether receipts up to `after` (moved already, not yet deleted) are still here."""
        with self._lock:
            connection = self._use()
            if connection is None:
                return [], False
            rows = connection.execute(
                "SELECT id, received_at, body FROM received WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
            moved = connection.execute("SELECT 1 FROM received WHERE id <= ? LIMIT 1", (after,)).fetchone()
            return [(int(i), str(at), bytes(body)) for i, at, body in rows], moved is not None

    def forget(self, through: int) -> None:
        """Delete the receipts up to id `through` (committed in the main file by then)."""
        with self._lock:
            connection = self._use()
            if connection is None:
                return
            begin_immediate(connection, self.BUSY_SECONDS)
            try:
                connection.execute("DELETE FROM received WHERE id <= ?", (through,))
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
