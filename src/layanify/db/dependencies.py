"""FastAPI dependency for the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.session import unit_of_work


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the route returns, rolled back when it raises.

    Declare it with `scope="function"` (as `SessionDep` does), so the commit comes before the answer.
    """
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session
