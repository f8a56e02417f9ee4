"""Queries for stored webhook events; flushes, never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.sql import is_postgresql, table_of
from layanify.webhooks.models import ReceiptHandover, WebhookEvent


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[Row[int, bytes, int, datetime]]:
    """Lock up to `limit` due pending events for this unit of work, oldest first.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint events and a worker that
    dies releases its rows with its connection. SQLite: the transaction began IMMEDIATE, so it is the
    only writer until it commits.
    """
    stmt = (
        select(WebhookEvent.id, WebhookEvent.body, WebhookEvent.attempts, WebhookEvent.received_at)
        # A literal predicate, so PostgreSQL's generic plans can still use the partial index.
        .where(text("webhook_events.status = 'pending'"), WebhookEvent.next_attempt_at <= now)
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).all())


async def mark(session: AsyncSession, event_id: int, **values: Any) -> None:
    """Update an event's processing state."""
    await session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(**values))


async def get(session: AsyncSession, event_id: int, workspace_id: int | None = None) -> WebhookEvent | None:
    """One event; scoped to a workspace when one is given."""
    stmt = select(WebhookEvent).where(WebhookEvent.id == event_id)
    if workspace_id is not None:
        stmt = stmt.where(WebhookEvent.workspace_id == workspace_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession,
    *,
    workspace_id: int | None,
    limit: int,
    before_id: int | None,
    status: str | None,
) -> list[WebhookEvent]:
    """Newest events first; scoped to a workspace when one is given."""
    stmt = select(WebhookEvent)
    if workspace_id is not None:
        stmt = stmt.where(WebhookEvent.workspace_id == workspace_id)
    if before_id is not None:
        stmt = stmt.where(WebhookEvent.id < before_id)
    if status is not None:
        stmt = stmt.where(WebhookEvent.status == status)
    result = await session.execute(stmt.order_by(WebhookEvent.id.desc()).limit(limit))
    return list(result.scalars())


async def mark_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record the outcome of several events at once (every row has the same keys, `event_id` first)."""
    if not rows:
        return
    connection = await session.connection()
    table = table_of(WebhookEvent)
    values: dict[str, Any] = {key: bindparam(key) for key in rows[0] if key != "event_id"}
    await connection.execute(update(table).where(table.c.id == bindparam("event_id")).values(**values), rows)


_RECEIVED_ROWS_PER_STATEMENT = 1000  # 4 parameters a row; SQLite allows 32,766 per statement


async def insert_received(session: AsyncSession, rows: list[tuple[int, str, bytes]]) -> list[int]:
    """Add receipts from a SQLite receipts file as pending events under their ids (stored forms, unchanged).

    An id already taken in `webhook_events` (by a row stored around the receipts file) is not reused: that
    receipt is added under a new id, so nothing is lost. Returns the ids of the events added.
    """
    connection = await session.connection()
    added: list[int] = []
    for start in range(0, len(rows), _RECEIVED_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _RECEIVED_ROWS_PER_STATEMENT]
        statement = (
            "INSERT INTO webhook_events (id, received_at, body, status, attempts, next_attempt_at) VALUES "  # noqa: S608
            + ",".join(["(?, ?, ?, 'pending', 0, ?)"] * len(chunk))
            + " ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        values = tuple(value for event_id, at, body in chunk for value in (event_id, at, body, at))
        inserted = {row[0] for row in (await connection.exec_driver_sql(statement, values)).all()}
        added.extend(inserted)
        for event_id, at, body in chunk:
            if event_id in inserted:
                continue
            result = await connection.exec_driver_sql(
                "INSERT INTO webhook_events (received_at, body, status, attempts, next_attempt_at)"
                " VALUES (?, ?, 'pending', 0, ?) RETURNING id",
                (at, body, at),
            )
            added.append(int(result.scalar_one()))
    return sorted(added)


async def handover_mark(session: AsyncSession) -> int:
    """The highest receipts-file id already moved into `webhook_events` (0 before the first)."""
    mark = await session.scalar(select(ReceiptHandover.moved_through).where(ReceiptHandover.id == 1))
    return int(mark or 0)


async def set_handover_mark(session: AsyncSession, moved_through: int) -> None:
    """Record that every receipt up to `moved_through` is in `webhook_events` (SQLite)."""
    connection = await session.connection()
    await connection.exec_driver_sql(
        "INSERT INTO webhook_receipt_handover (id, moved_through) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET moved_through = max(moved_through, excluded.moved_through)",
        (moved_through,),
    )
