"""A request's writes are committed before its answer leaves: what a client is told happened, happened.

The client here is the app wrapped in a watcher that, at the moment the answer starts to leave, looks at
the database through a connection of its own (as the browser's next request would). httpx's ASGI
transport alone cannot tell: it hands the answer over only once the app has returned, commit included.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.models import UserSession
from layanify.db.session import Sessionmaker
from tests.conftest import Tenant

Message = MutableMapping[str, Any]


async def _sessions(sessionmaker: Sessionmaker) -> int:
    """Login sessions committed so far (on SQLite read without a lock: the app's sessions take the write
    lock at BEGIN, and a watcher waiting for it would wait for the very commit it looks for)."""
    async with sessionmaker() as session:
        bind = session.bind
        if bind.dialect.name == "sqlite":
            path = bind.url.database
            assert path
            with contextlib.closing(sqlite3.connect(path)) as connection:
                return int(connection.execute("SELECT count(*) FROM user_sessions").fetchone()[0])
        return int(await session.scalar(select(func.count()).select_from(UserSession)) or 0)


@pytest.fixture
async def watched(
    app: FastAPI, sessionmaker: Sessionmaker
) -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    """A client whose every answer records, as it starts to leave, how many login sessions are stored."""
    seen: list[int] = []

    async def watcher(scope: Message, receive: Any, send: Any) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.append(await _sessions(sessionmaker))
            await send(message)

        await app(scope, receive, sending)

    transport = httpx.ASGITransport(app=watcher, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http, seen


async def test_an_api_login_is_stored_before_its_answer_leaves(
    watched: tuple[httpx.AsyncClient, list[int]], tenant: Tenant
) -> None:
    client, seen = watched
    response = await client.post(
        "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert response.status_code == 200
    assert seen == [1]  # the session the cookie names exists when the cookie arrives


async def test_the_login_form_is_stored_before_its_redirect_leaves(
    watched: tuple[httpx.AsyncClient, list[int]], tenant: Tenant
) -> None:
    """The browser follows the 303 at once: a session committed later sent it back to the login form."""
    client, seen = watched
    response = await client.post(
        "/login", data={"email": tenant.email, "password": tenant.password, "next": "/inbox"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox"
    assert seen == [1]
    inbox = await client.get("/inbox")
    assert inbox.status_code == 200


async def test_a_change_whose_commit_fails_is_not_answered_as_done(
    watched: tuple[httpx.AsyncClient, list[int]],
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _ = watched

    async def refuse(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(AsyncSession, "commit", refuse)
    response = await client.post(
        "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    monkeypatch.undo()
    assert response.status_code >= 500
    assert "set-cookie" not in response.headers
    assert await _sessions(sessionmaker) == 0
