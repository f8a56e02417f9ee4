"""Webhook receipts committed by a child process of the server, on a core of its own (decision 39).

The server's `EventWriter` still gathers concurrent receipts into batches and answers each request only
once its batch is committed; with `LAYANIFY_WEBHOOK_WRITER=process` (what `auto` picks on SQLite when the
server may use two cores) the batch is committed by this module's child process instead of the server's
own thread or connection. The server then spends on a receipt little more than the HTTP exchange and the
signature check, and sealing the bodies, building the statement and the driver's work run beside it, not
between its requests (measured in docs/benchmarks.md).

The child is `python -m layanify.webhooks.receipt_process FD`, connected to the server by a Unix socket
pair. Frames are a 4-byte little-endian length and a pickle (both ends are this package, over a socket no
one else holds): first the server's `Settings`, the SQLite file (or None) and the number of batches that
may commit at once, answered with a ready frame; then `(seq, rows)` batches, answered `(seq, ids, None)`
or `(seq, None, error)`. The child commits exactly as the in-process writers do (`SqliteReceiptFile`,
`PostgresReceipts`) and exits when the server closes its end, after answering every batch it was given.
If it dies, the batches in flight are answered 503 (Meta retries; a batch committed just before the death
comes back as a duplicate delivery, which processing already treats as one) and the next batch starts a
new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import signal
import socket
import struct
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from layanify.config import Settings
from layanify.observability import get_logger

log = get_logger(__name__)

_LENGTH = struct.Struct("<I")
_READY = -1  # the sequence number of the child's answer to the settings frame

Rows = list[tuple[datetime, bytes]]


class ReceiptProcessError(RuntimeError):
    """The child could not commit the batch, could not be started, or ended before answering."""


def _frame(value: object) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame's value; IncompleteReadError at the end of the stream."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))  # noqa: S301 - our own child, our own socket pair


class ReceiptProcess:
    """The server's end: starts the child, sends it batches, hands each request its batch's ids."""

    START_SECONDS = 30.0  # importing, then opening the database (PostgreSQL: connecting)
    STOP_SECONDS = 10.0
    RETRY_SECONDS = 1.0  # after a failed start, batches are refused this long before the next try
    MODULE = "layanify.webhooks.receipt_process"

    def __init__(self, settings: Settings, *, sqlite_file: Path | None, in_flight: int) -> None:
        self._settings = settings
        self._sqlite_file = sqlite_file.resolve() if sqlite_file is not None else None
        self._in_flight = in_flight
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[list[int]]] = {}
        self._sequence = itertools.count()
        self._starting = asyncio.Lock()
        self._failed_at = -1e9

    @property
    def pid(self) -> int | None:
        """The running child's process id (None when none runs)."""
        return self._process.pid if self._process is not None and self._writer is not None else None

    async def start(self) -> bool:
        """Start the child unless it runs, or a start failed less than RETRY_SECONDS ago; True if it runs.

        A child that died is replaced by the next batch, or the next call here (`/readyz` calls it).
        """
        async with self._starting:
            if self._writer is None and time.monotonic() - self._failed_at >= self.RETRY_SECONDS:
                with contextlib.suppress(ReceiptProcessError):  # logged by _spawn
                    await self._spawn()
            return self._writer is not None

    async def insert(self, rows: Rows) -> list[int]:
        """Commit the rows in the child; returns their ids in the rows' order."""
        writer = self._writer
        if writer is None:
            if not await self.start():
                raise ReceiptProcessError("the receipt writer process is not running")
            writer = self._writer
            assert writer is not None
        seq = next(self._sequence)
        answer: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = answer
        try:
            writer.write(_frame((seq, rows)))
            return await answer
        finally:
            self._waiting.pop(seq, None)

    async def close(self) -> None:
        """Close the server's end: the child answers what it has, then exits (killed if it does not)."""
        async with self._starting:
            writer, self._writer = self._writer, None
            process, self._process = self._process, None
            if writer is not None:
                with contextlib.suppress(ConnectionError):
                    writer.write_eof()
            if self._reader_task is not None:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._reader_task), self.STOP_SECONDS)
                self._reader_task.cancel()
                self._reader_task = None
            if writer is not None:
                writer.close()
            if process is not None:
                await self._reap(process)

    async def _reap(self, process: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(process.wait(), self.STOP_SECONDS)
        except TimeoutError:
            log.error("webhook_receipt_process_killed", pid=process.pid, reason="did not exit")
            process.kill()
            await process.wait()

    async def _spawn(self) -> None:
        """Start a child and wait for its ready frame; on failure remember when, and raise."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process: asyncio.subprocess.Process | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.MODULE,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
            theirs.close()
            reader, writer = await asyncio.open_unix_connection(sock=ours, limit=2**20)
            writer.write(_frame((self._settings, self._sqlite_file, self._in_flight)))
            seq, _, error = await asyncio.wait_for(_read_frame(reader), self.START_SECONDS)
            if seq != _READY or error is not None:
                raise ReceiptProcessError(f"the receipt writer process did not start: {error}")
        except BaseException as exc:
            theirs.close()
            if writer is not None:
                writer.close()
            else:
                ours.close()
            if process is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            self._failed_at = time.monotonic()
            log.error("webhook_receipt_process_not_started", error=type(exc).__name__, detail=str(exc))
            if isinstance(exc, Exception) and not isinstance(exc, ReceiptProcessError):
                raise ReceiptProcessError("the receipt writer process could not be started") from exc
            raise
        self._process, self._writer = process, writer
        self._reader_task = asyncio.create_task(self._read(reader, writer, process), name="receipt-process")
        log.info("webhook_receipt_process_started", pid=process.pid)

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, process: asyncio.subprocess.Process
    ) -> None:
        """Hand out the child's answers until it closes its end; then fail whatever it left unanswered."""
        try:
            while True:
                seq, ids, error = await _read_frame(reader)
                answer = self._waiting.get(seq)
                if answer is None or answer.done():
                    continue
                if error is None:
                    answer.set_result(ids)
                else:
                    answer.set_exception(ReceiptProcessError(error))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the child closed its end: it exited, or was killed
        except Exception:
            log.exception("webhook_receipt_process_unreadable", pid=process.pid)
        finally:
            died = self._writer is writer  # else close() ended it, and reaps it
            if died:
                self._writer = self._process = None  # the next batch starts a new child
            # No await before this: a batch sent to this child has its answer registered by now.
            for answer in list(self._waiting.values()):
                if not answer.done():
                    answer.set_exception(ReceiptProcessError("the receipt writer process ended"))
            if died:
                writer.close()
                await self._reap(process)
                log.error("webhook_receipt_process_ended", pid=process.pid, returncode=process.returncode)


# --- The child ------------------------------------------------------------------------------------


async def _child(fd: int) -> None:
    """Commit batches from the server until it closes the socket (a frame at a time, answered in turn
    on SQLite; up to `in_flight` at once on PostgreSQL, each on its own connection)."""
    from layanify.crypto import content as content_crypto
    from layanify.crypto.keyring import Keyring
    from layanify.db.engine import create_engine
    from layanify.observability import configure_logging
    from layanify.webhooks.ingest import PostgresReceipts, SqliteReceiptFile

    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd), limit=2**24)
    try:
        settings, sqlite_file, in_flight = await _read_frame(reader)
    except asyncio.IncompleteReadError:
        return
    assert isinstance(settings, Settings)
    configure_logging(settings)
    engine = None
    sqlite: SqliteReceiptFile | None = None
    postgres: list[PostgresReceipts] = []
    try:
        content_crypto.configure_from(
            settings, Keyring.from_setting(settings.encryption_keys.get_secret_value())
        )
        if sqlite_file is not None:
            sqlite = SqliteReceiptFile(sqlite_file)
        else:
            engine = create_engine(settings)
            postgres = [PostgresReceipts(engine) for _ in range(max(1, in_flight))]
            await postgres[0].connect()  # a database that cannot be reached is reported at the start
    except Exception as exc:
        writer.write(_frame((_READY, None, f"{type(exc).__name__}: {exc}")))
        await writer.drain()
        raise
    writer.write(_frame((_READY, None, None)))
    batches: asyncio.Queue[tuple[int, Rows] | None] = asyncio.Queue()

    async def commit(store: PostgresReceipts | None) -> None:
        while (batch := await batches.get()) is not None:
            seq, rows = batch
            try:
                if store is not None:
                    ids = await store.insert(rows)
                else:
                    assert sqlite is not None
                    ids = sqlite.commit(rows)  # this process has nothing else to do meanwhile
            except Exception as exc:
                log.error(
                    "webhook_receipt_process_store_failed",
                    count=len(rows),
                    error=type(exc).__name__,
                    exc_info=True,
                )
                writer.write(_frame((seq, None, type(exc).__name__)))
            else:
                writer.write(_frame((seq, ids, None)))

    stores: list[PostgresReceipts | None] = [*postgres] if postgres else [None]
    committers = [asyncio.create_task(commit(store)) for store in stores]
    try:
        while True:
            try:
                batch = await _read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            await batches.put(batch)
    finally:
        for _ in committers:
            await batches.put(None)
        await asyncio.gather(*committers, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        for store in postgres:
            await store.close()
        if sqlite is not None:
            sqlite.close()
        if engine is not None:
            await engine.dispose()


def main(argv: list[str]) -> None:
    """`python -m layanify.webhooks.receipt_process FD`: started by the server, never by hand."""
    # The server decides when this process ends (it closes the socket); Ctrl-C in a terminal reaches the
    # whole process group, and the server still needs this process to commit what it drains on the way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import uvloop

    uvloop.run(_child(int(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
