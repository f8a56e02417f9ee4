"""Queries for stored webhook events; flushes, never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.sql import is_postgresql, table_of
from layanify.webhooks.models import WebhookEvent


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
