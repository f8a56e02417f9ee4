"""What a client is told when a request fails for a reason that is not its own.

A database that is busy or unreachable for a moment is answered 503 with `Retry-After` (the client's
retry will likely work; nothing about the request was wrong), in the shape the caller reads: our JSON
envelope on the REST API, tRPC's on the seed's endpoints, a page or a toast in the UI. A bug is a 500
with a reference that the log line carries too, and never the exception's text. The errors used are
real ones, raised by the database under test, not hand-made lookalikes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from layanify.accounts.models import UserSession
from layanify.app import create_app
from layanify.contacts import service as contacts
from layanify.db.session import Sessionmaker
from layanify.numbers import service as numbers
from tests.conftest import Tenant, make_settings
from tests.web.test_pages import as_owner

SECRET_DETAIL = "0812-9999-0000 said something private"


@pytest.fixture
async def busy_error(engine: AsyncEngine) -> DBAPIError:
    """A real "try again" error from the database under test, raised through the app's own engine.

    SQLite: another connection holds the write lock while ours may wait only 10 ms (SQLITE_BUSY).
    PostgreSQL: another transaction holds the table's lock while ours may wait only 50 ms (55P03).
    """
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        assert path
        async with engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA busy_timeout = 10")
            await connection.commit()
            with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
                holder.execute("BEGIN IMMEDIATE")
                try:
                    await connection.exec_driver_sql("SELECT count(*) FROM contacts")  # BEGIN IMMEDIATE first
                except DBAPIError as exc:
                    error = exc
                holder.execute("ROLLBACK")
            await connection.invalidate()  # its busy timeout is not the app's: never reused
    else:
        async with engine.connect() as holder, engine.connect() as waiter:
            await holder.execute(text("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE"))
            await waiter.execute(text("SET LOCAL lock_timeout = '50ms'"))
            try:
                await waiter.execute(text("SELECT count(*) FROM contacts"))
            except DBAPIError as exc:
                error = exc
            await waiter.rollback()
            await holder.rollback()
    return error


@pytest.fixture
async def lenient(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the app's answer to an exception instead of the exception itself."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything logged meanwhile, wherever structlog sent it (stdout unconfigured, else the root logger)."""
    caplog.set_level(logging.INFO)
    capsys.readouterr()

    def read() -> str:
        out, err = capsys.readouterr()
        return "\n".join((out, err, caplog.text))

    return read


def fail_with(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, error: BaseException) -> None:
    async def failing(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(module, name, failing)


async def test_a_busy_database_is_a_503_the_client_can_retry(
    client: httpx.AsyncClient,
    tenant: Tenant,
    busy_error: DBAPIError,
    monkeypatch: pytest.MonkeyPatch,
    logs: Any,
) -> None:
    fail_with(monkeypatch, contacts, "list_contacts", busy_error)
    response = await client.get("/api/v1/contacts", headers=tenant.headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "retry" in error["message"]
    assert "SELECT" not in response.text
    assert "INSERT" not in response.text
    logged = logs()
    assert "request_unavailable" in logged
    assert "/api/v1/contacts" in logged

    monkeypatch.undo()  # the moment passed: the same request works
    assert (await client.get("/api/v1/contacts", headers=tenant.headers)).status_code == 200


async def test_a_commit_the_busy_database_refuses_is_a_503_and_stores_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    sessionmaker: Sessionmaker,
    busy_error: DBAPIError,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(self: AsyncSession) -> None:
        raise busy_error

    monkeypatch.setattr(AsyncSession, "commit", refuse)
    login = {"email": tenant.email, "password": tenant.password}
    response = await client.post("/api/v1/auth/login", json=login)
    monkeypatch.undo()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "set-cookie" not in response.headers
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 0
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 200


async def test_redis_down_is_a_503_for_the_login_it_throttles(database_url: str, tenant: Tenant) -> None:
    """Scaled out, failed logins are counted in Redis: Redis unreachable is an outage, not a bug."""
    settings = make_settings(database_url, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    app = create_app(settings, migrate=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        response = await http.post("/api/v1/auth/login", json={"email": tenant.email, "password": "wrong"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "unavailable"


async def test_a_bug_is_a_500_with_a_reference_in_the_log_and_no_detail_in_the_answer(
    lenient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    fail_with(monkeypatch, contacts, "list_contacts", RuntimeError(SECRET_DETAIL))
    response = await lenient.get("/api/v1/contacts", headers=tenant.headers)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert re.fullmatch(r"[0-9a-f]{12}", error["reference"])
    assert SECRET_DETAIL not in response.text
    assert "RuntimeError" not in response.text
    logged = logs()
    assert "request_failed" in logged
    assert error["reference"] in logged  # the operator finds the user's report in the log


async def test_a_database_error_that_is_no_outage_stays_a_500(
    lenient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constraint or disk error is not cured by retrying: no 503 that would make clients loop."""
    error = OperationalError("COMMIT", {}, Exception("disk I/O error"))
    fail_with(monkeypatch, contacts, "list_contacts", error)
    response = await lenient.get("/api/v1/contacts", headers=tenant.headers)
    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert response.json()["error"]["code"] == "internal_error"


async def test_the_seed_trpc_endpoint_answers_an_outage_in_trpc_shape(
    client: httpx.AsyncClient,
    tenant: Tenant,
    busy_error: DBAPIError,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fail_with(monkeypatch, numbers, "list_numbers", busy_error)
    response = await client.get("/api/trpc/whatsapp.getNumbers", headers=tenant.headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert error["code"] == -32603
    assert error["data"] | {"path": "whatsapp.getNumbers"} == error["data"]
    assert error["data"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["data"]["httpStatus"] == 503
    assert error["data"]["reason"] == "unavailable"


async def test_the_ui_shows_an_outage_as_a_page_and_as_a_toast_in_the_users_language(
    client: httpx.AsyncClient,
    tenant: Tenant,
    busy_error: DBAPIError,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = await as_owner(client, tenant)
    fail_with(monkeypatch, contacts, "list_contacts", busy_error)
    page = await client.get("/contacts")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "2"
    assert "Try again in a moment" in page.text
    assert "Back to the inbox" in page.text

    rows = await client.get("/contacts/rows", headers=headers)  # htmx: a toast where the rows were due
    assert rows.headers["hx-retarget"] == "#toasts"
    assert "Try again in a moment" in rows.text

    client.cookies.set("layanify_lang", "id")
    page = await client.get("/contacts")
    assert page.status_code == 503
    assert "Coba lagi sebentar lagi" in page.text


async def test_the_ui_shows_a_bug_as_a_page_with_its_reference(
    lenient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    await as_owner(lenient, tenant)
    fail_with(monkeypatch, contacts, "list_contacts", RuntimeError(SECRET_DETAIL))
    page = await lenient.get("/contacts", headers={"Accept": "text/html"})
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert SECRET_DETAIL not in page.text
    found = re.search(r"reference ([0-9a-f]{12})", page.text)
    assert found, page.text
    assert found.group(1) in logs()


async def test_htmx_gets_a_bug_as_a_toast(
    lenient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await as_owner(lenient, tenant)
    fail_with(monkeypatch, contacts, "list_contacts", RuntimeError(SECRET_DETAIL))
    rows = await lenient.get("/contacts/rows", headers=headers)
    assert rows.headers["hx-retarget"] == "#toasts"
    assert "Something went wrong on our side" in rows.text
    assert SECRET_DETAIL not in rows.text


async def test_a_failed_statement_does_not_carry_its_values_into_errors_or_logs(engine: AsyncEngine) -> None:
    """Parameters hold message text and phone numbers: a database error (logged, sent to Sentry) names
    the statement only."""
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError) as raised:
            await connection.execute(text("SELECT :private FROM no_such_table"), {"private": SECRET_DETAIL})
        await connection.rollback()
    assert "no_such_table" in str(raised.value)
    assert SECRET_DETAIL not in str(raised.value)


async def test_a_bug_while_showing_the_error_page_still_gets_an_answer_with_the_reference(
    lenient: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    await as_owner(lenient, tenant)
    fail_with(monkeypatch, contacts, "list_contacts", RuntimeError(SECRET_DETAIL))

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the template is broken too")

    monkeypatch.setattr("layanify.web.setup.render", broken)
    page = await lenient.get("/contacts")
    assert page.status_code == 500
    assert re.fullmatch(r"[0-9a-f]{12}", page.json()["error"]["reference"])
    assert SECRET_DETAIL not in page.text


async def test_no_such_endpoint_or_method_is_answered_in_our_envelope(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    missing = await client.get("/api/v1/nothing-here", headers=tenant.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "Nothing is at GET /api/v1/nothing-here."}
    }
    wrong_method = await client.delete("/api/v1/contacts", headers=tenant.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["allow"]  # what is allowed there, as before


async def test_a_mistyped_address_in_the_browser_gets_a_page_not_json(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await as_owner(client, tenant)
    page = await client.get("/inbx")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "This page does not exist" in page.text
    assert "Back to the inbox" in page.text
    client.cookies.set("layanify_lang", "id")
    assert "Halaman ini tidak ada" in (await client.get("/inbx")).text
