"""Applying and checking Alembic migrations from code (CLI, `serve` on start, /readyz, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class MigrationIntegrityError(RuntimeError):
    """A migration left rows pointing at rows that do not exist; it was rolled back."""


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every migration not yet applied (up to `revision`).

    On SQLite, Alembic changes a table by copying it into a new one and dropping the old; with foreign
    keys enforced, dropping the old `conversations` would cascade-delete every message. So SQLite
    migrations run with foreign keys off (the pragma only takes effect outside a transaction), then
    `PRAGMA foreign_key_check` must find nothing before the transaction commits.
    """

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    async with engine.connect() as connection:
        await connection.run_sync(_foreign_keys, "OFF")
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade)
                problems = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
                if problems:
                    raise MigrationIntegrityError(
                        f"the migration left {len(problems)} rows with broken references "
                        f"(first: {tuple(problems[0])}); nothing was changed"
                    )
        finally:
            await connection.run_sync(_foreign_keys, "ON")


def _foreign_keys(connection: Connection, state: str) -> None:
    """Switch SQLite's foreign-key enforcement on the raw connection: outside any transaction (the engine
    begins one before every statement it runs, and the pragma does nothing inside a transaction)."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={state}")
    finally:
        cursor.close()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at (None for an empty database)."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_current)
