"""Test harness: a real database per run (SQLite file or PostgreSQL), emptied before every test.

Choose the database with LAYANIFY_TEST_DATABASE=sqlite|postgresql (`make test` runs both). When
PostgreSQL is asked for but unreachable, every test is skipped and the run says so loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from layanify.accounts import security
from layanify.app import create_app
from layanify.config import Settings
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.models import Base
from layanify.webhooks import service as webhooks_service
from layanify.webhooks.ingest import receipts_file
from layanify.webhooks.models import WebhookEvent
from layanify.webhooks.tasks import WebhookWorker
from layanify.whatsapp.signature import sign
from tests import factories

DATA = Path(__file__).parent / "data" / "whatsapp"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
TEST_ENCRYPTION_KEYS = factories.TEST_ENCRYPTION_KEYS  # the factories encrypt tokens with the same key
PG_ADMIN_DSN = os.environ.get("LAYANIFY_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_TEST_DB = f"layanify_test_{os.getpid()}"  # one per run, so parallel runs never collide
BACKEND = os.environ.get("LAYANIFY_TEST_DATABASE", "sqlite")
_pg_unavailable: str | None = None

# Production argon2 parameters cost ~0.5 s a hash here; tests hash with cheap ones (same code path).
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def fixture(name: str) -> dict[str, Any]:
    """A Meta payload fixture from tests/data/whatsapp/, decoded."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


def fixture_bytes(name: str) -> bytes:
    """A Meta payload fixture exactly as stored (signatures are over these bytes)."""
    return (DATA / f"{name}.json").read_bytes()


async def _drop_postgres() -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
    finally:
        await admin.close()


async def _prepare_postgres() -> str:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_TEST_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{PG_TEST_DB}"')
    finally:
        await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{PG_TEST_DB}"


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The database this run tests against, created empty and migrated once."""
    global _pg_unavailable
    if BACKEND == "postgresql":
        try:
            url = await _prepare_postgres()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            _pg_unavailable = f"{type(exc).__name__}: {exc}"
            pytest.skip(f"PostgreSQL unavailable at {PG_ADMIN_DSN}: {_pg_unavailable}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = create_engine(Settings(database_url=url))
    await upgrade(engine)
    await engine.dispose()
    yield url
    if BACKEND == "postgresql":
        await _drop_postgres()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for tests: fast retries, no in-process workers unless asked, known secrets."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "env": "test",
        "whatsapp_app_secret": SecretStr(APP_SECRET),
        "whatsapp_verify_token": SecretStr(VERIFY_TOKEN),
        "encryption_keys": SecretStr(TEST_ENCRYPTION_KEYS),
        "in_process_workers": 0,
        "webhook_writer": "in-process",  # a child process per app would cost ~1 s a test; own tests cover it
        "worker_retry_base_seconds": 0.01,
        "worker_poll_seconds": 0.05,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test database for factories and assertions."""
    engine = create_engine(Settings(database_url=database_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> Sessionmaker:
    """Sessions on the test database."""
    return create_sessionmaker(engine)


def _empty_receipts_file(engine: AsyncEngine) -> None:
    """On SQLite, receipts not yet handed to a worker wait in a file of their own (decision 35)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database:
        return
    path = receipts_file(Path(database))
    if path.exists():
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection, connection:
            connection.execute("DELETE FROM received")


@pytest.fixture(autouse=True)
async def _empty_database(engine: AsyncEngine) -> None:
    """Every test starts from empty tables (the schema stays). tests/unit overrides this with nothing."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # End-to-end tests keep a real server process running across tests; its workers read these tables,
    # and PostgreSQL may pick this TRUNCATE (which locks every table) as a deadlock victim: try again.
    for attempt in range(5):
        try:
            await asyncio.to_thread(_empty_receipts_file, engine)
            async with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own tables
            return
        except DBAPIError as error:
            if attempt == 4 or "deadlock" not in str(error).lower():
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings of the app under test."""
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (writer started; workers off: tests process explicitly)."""
    application = create_app(settings, migrate=False)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def session(sessionmaker: Sessionmaker) -> AsyncIterator[AsyncSession]:
    """A committed unit of work for arranging data."""
    async with unit_of_work(sessionmaker) as s:
        yield s


@dataclass
class Tenant:
    """A workspace with an owner, an API key and a connected number."""

    workspace_id: int
    user_id: int
    email: str
    password: str
    api_key: str
    number_id: int
    phone_number_id: str

    @property
    def headers(self) -> dict[str, str]:
        """Bearer auth for the API."""
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
async def tenant(sessionmaker: Sessionmaker) -> Tenant:
    """The workspace that owns the fixtures' phone number (106540352242922)."""
    return await factories.create_tenant(sessionmaker, name="Toko Budi", email="owner@tokobudi.id")


@pytest.fixture
async def other_tenant(sessionmaker: Sessionmaker) -> Tenant:
    """A second workspace with its own number, to prove isolation."""
    return await factories.create_tenant(
        sessionmaker,
        name="Other Co",
        email="owner@other.example",
        phone_number_id="222222222222222",
        display_number="15550000000",
    )


@contextlib.contextmanager
def statements(engine: AsyncEngine, prefix: str) -> Iterator[list[str]]:
    """The SQL statements starting with `prefix` that the engine sends while the block runs (an
    executemany counts once: it is one statement)."""
    seen: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith(prefix):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def stored_events(sessionmaker: Sessionmaker) -> list[WebhookEvent]:
    """Every event committed so far, oldest first.

    On SQLite a receipt is committed to the receipts file and moved into `webhook_events` by the next
    worker batch (decision 35): this moves what waits there first, as a worker would.
    """
    async with unit_of_work(sessionmaker) as session:
        await webhooks_service.take_received(session)
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars())


def waiting_receipts(database_url: str) -> int:
    """Receipts committed to a SQLite receipts file and not yet moved by a worker (0 on PostgreSQL)."""
    if BACKEND != "sqlite":
        return 0
    path = receipts_file(Path(database_url.split(":///", 1)[1]))
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
        return int(connection.execute("SELECT count(*) FROM received").fetchone()[0])


class WebhookPoster:
    """Signs and posts webhook bodies like Meta, then lets the worker process them."""

    def __init__(self, client: httpx.AsyncClient, sessionmaker: Sessionmaker, settings: Settings) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def post(self, body: bytes | dict[str, Any] | str, *, secret: str = APP_SECRET) -> httpx.Response:
        """POST a body signed with the app secret (a dict is serialised, a str names a fixture)."""
        raw = (
            fixture_bytes(body)
            if isinstance(body, str)
            else body
            if isinstance(body, bytes)
            else json.dumps(body).encode()
        )
        return await self.client.post(
            "/api/webhooks/whatsapp",
            content=raw,
            headers={"X-Hub-Signature-256": sign(secret, raw), "Content-Type": "application/json"},
        )

    async def process(self) -> int:
        """Run the worker until nothing is due; returns how many events it claimed."""
        worker = WebhookWorker(self.sessionmaker, self.settings)
        total = 0
        while claimed := await worker.process_due_batch():
            total += claimed
        return total

    async def deliver(self, *bodies: bytes | dict[str, Any] | str) -> None:
        """Post every body (each must be acknowledged with 200), then process them."""
        for body in bodies:
            response = await self.post(body)
            assert response.status_code == 200, response.text
        await self.process()


@pytest.fixture
def webhook(client: httpx.AsyncClient, sessionmaker: Sessionmaker, settings: Settings) -> WebhookPoster:
    """Post signed webhooks and process them."""
    return WebhookPoster(client, sessionmaker, settings)


class RecordingLog:
    """Stands in for a module's structlog logger: keeps each call's level and event."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, *_, **__: self.calls.append((level, event))


def database_locked() -> Exception:
    """What SQLAlchemy raises when SQLite's write lock outlasts the busy timeout (SQLITE_BUSY)."""
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5
    return OperationalError("BEGIN IMMEDIATE", None, busy)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the PostgreSQL run could not happen."""
    if _pg_unavailable:
        terminalreporter.write_sep("!", "POSTGRESQL TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"PostgreSQL was not reachable at {PG_ADMIN_DSN}: {_pg_unavailable}", red=True
        )
        terminalreporter.write_line("Start it (see README) and run `make test` again.", red=True)
