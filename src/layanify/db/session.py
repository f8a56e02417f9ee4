"""The unit of work: the one place that commits, and the side effects that wait for the commit."""

from __future__ import annotations

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
