"""The unit of work: the one place that commits, and the side effects that wait for the commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from layanify.observability import get_logger

Sessionmaker = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]

log = get_logger(__name__)
_AFTER_COMMIT_KEY = "layanify_after_commit"


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the unit of work owning `session` has committed (never if it rolls back)."""
    session.info.setdefault(_AFTER_COMMIT_KEY, []).append(callback)


def after_commit_call(session: AsyncSession, callback: Callable[[], None] | None) -> None:
    """Call a plain function (e.g. waking a worker) once the unit of work has committed."""
    if callback is None:
        return
    wake = callback

    async def run() -> None:
        wake()

    after_commit(session, run)


@asynccontextmanager
async def unit_of_work(sessionmaker: Sessionmaker) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds, roll back when it raises; then run the after-commit hooks."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()
        for callback in session.info.pop(_AFTER_COMMIT_KEY, []):
            try:
                await callback()
            except Exception:
                log.exception("after_commit_failed")


class WriteGate:
    """Queues this process's big write transactions on SQLite on an asyncio lock.

    SQLite has one writer. A transaction that finds the file locked waits in SQLite's busy handler,
    which sleeps in growing steps (up to 100 ms) — so a request's write waiting behind a worker's batch
    would wake late. Taking turns on an asyncio lock first hands the file over the moment it is free.
    On PostgreSQL (row locks) the gate does nothing.
    """

    def __init__(self, enabled: bool) -> None:
        self._lock = asyncio.Lock() if enabled else None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the gate for one write transaction."""
        if self._lock is None:
            yield
            return
        async with self._lock:
            yield
