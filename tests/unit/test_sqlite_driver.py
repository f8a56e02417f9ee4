"""The SQLite engine's one-trip cursor: same results as SQLAlchemy's own adapter, one thread call each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.db.engine import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/one-trip.db"))
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INT)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's threads, by function name."""
    seen: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


def fetch_in_arraysize_steps(connection: Connection) -> list[list[str]]:
    """The DB-API cursor's fetchmany() without a size: arraysize rows (1 by default, as DB-API says)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute("SELECT name FROM t ORDER BY id")
        first = [row[0] for row in cursor.fetchmany()]
        cursor.arraysize = 2
        return [first, [row[0] for row in cursor.fetchmany()]]
    finally:
        cursor.close()


async def test_rows_columns_counts_and_ids_come_back_as_from_sqlite(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        assert inserted.lastrowid == 1
        many = await connection.execute(
            text("INSERT INTO t (name, n) VALUES (:name, :n)"), [{"name": "b", "n": 2}, {"name": "c", "n": 3}]
        )
        assert many.rowcount == 2
        updated = await connection.execute(text("UPDATE t SET n = n * 10 WHERE n >= 2"))
        assert updated.rowcount == 2
        returned = await connection.execute(
            text("INSERT INTO t (name, n) VALUES ('d', 4) RETURNING id, name")
        )
        assert [tuple(row) for row in returned] == [(4, "d")]
        result = await connection.execute(text("SELECT name, n FROM t ORDER BY id"))
        assert list(result.keys()) == ["name", "n"]
        assert [tuple(row) for row in result] == [("a", 1), ("b", 20), ("c", 30), ("d", 4)]
        partial = await connection.execute(text("SELECT name FROM t ORDER BY id"))
        assert [row.name for row in partial.fetchmany(3)] == ["a", "b", "c"]
        assert [row.name for row in partial.fetchmany()] == ["d"]
        assert await connection.run_sync(fetch_in_arraysize_steps) == [["a"], ["b", "c"]]
        empty = await connection.execute(text("SELECT name FROM t WHERE n > 100"))
        assert list(empty.keys()) == ["name"]
        assert empty.all() == []


async def test_a_failing_statement_raises_sqlalchemys_error_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO t (name, n) VALUES ('a', 2)"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_a_statement_is_one_call_on_the_thread(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # the connection's BEGIN and first-use set-up
        trips.clear()
        rows = (await connection.execute(text("SELECT name FROM t"))).all()
        await connection.execute(text("INSERT INTO t (name, n) VALUES (:name, :n)"), {"name": "x", "n": 1})

    assert rows == []
    assert trips[:2] == ["_run_statement", "_run_statement"]  # not cursor, execute, fetchall, close
