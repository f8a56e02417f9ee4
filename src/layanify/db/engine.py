"""Engine creation: SQLite in WAL mode with one writer at a time, or PostgreSQL via asyncpg."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.db.sqlite_driver import one_trip_dbapi


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def database_shown(settings: Settings) -> str:
    """The database URL for people to read: its password hidden."""
    return make_url(settings.database_url).render_as_string(hide_password=True)


def create_engine(settings: Settings, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for the configured database (JSON columns through orjson: measured faster).

    `hide_parameters`: a database error's text names the statement but not its values. Without it every
    failed statement's message carried them (message text, phone numbers, raw webhook bodies) into the
    server's log, tracebacks and Sentry.
    """
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("module", one_trip_dbapi())  # one thread round trip per statement
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, pool_size=8, max_overflow=8, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        settings.database_url, pool_size=10, max_overflow=10, pool_pre_ping=True, **kwargs
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so a transaction that will write holds the lock from its start.

    SQLite's default deferred BEGIN upgrades to a write lock at the first write and fails at once
    (SQLITE_BUSY, no waiting) when another connection wrote meanwhile; IMMEDIATE waits its turn instead.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a crash
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> Sessionmaker:
    """Sessions that keep loaded objects usable after commit (tasks reload by id anyway)."""
    return async_sessionmaker(engine, expire_on_commit=False)
