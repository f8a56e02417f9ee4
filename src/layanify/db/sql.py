"""Small dialect-aware statements shared by repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def table_of(model: type[DeclarativeBase]) -> Table:
    """The Core table of a model, for set-based statements that bypass the ORM's per-object work."""
    return cast(Table, model.__table__)


def insert_ignoring_conflicts(session: AsyncSession, model: type[DeclarativeBase] | Table) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect (the database's unique keys dedupe)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing()
    raise RuntimeError(f"unsupported database dialect: {name}")


def one_of(session: AsyncSession, column: Any, values: Iterable[Any]) -> Any:
    """`column IN values`, as `= ANY(:array)` on PostgreSQL.

    An expanded IN list is new SQL text for every list length, so asyncpg prepares a new statement for
    nearly every batch; one array parameter keeps the text (and the prepared statement) the same.
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def is_postgresql(session: AsyncSession) -> bool:
    """True when the session talks to PostgreSQL (row locks with SKIP LOCKED are available)."""
    return session.get_bind().dialect.name == "postgresql"
