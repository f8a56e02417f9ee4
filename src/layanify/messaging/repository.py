"""Queries for messages and status history; flushes, never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from layanify.db.sql import insert_ignoring_conflicts, one_of, table_of
from layanify.messaging.models import Message, MessageStatusEvent


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert a message; None when its wamid is already stored (a redelivered webhook)."""
    stmt = insert_ignoring_conflicts(session, Message).values(**values).returning(Message.id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_status_event(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Record a status report; None when this (wamid, status) was already recorded."""
    stmt = (
        insert_ignoring_conflicts(session, MessageStatusEvent)
        .values(**values)
        .returning(MessageStatusEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_wamid(session: AsyncSession, workspace_id: int, wamid: str) -> Message | None:
    """The workspace's message with this wamid."""
    result = await session.execute(
        select(Message).where(Message.wamid == wamid, Message.workspace_id == workspace_id)
    )
    return result.scalar_one_or_none()


async def in_workspace(session: AsyncSession, workspace_id: int, message_id: int) -> Message | None:
    """The message, only when it belongs to the workspace."""
    result = await session.execute(
        select(Message).where(Message.id == message_id, Message.workspace_id == workspace_id)
    )
    return result.scalar_one_or_none()


async def unmatched_statuses(session: AsyncSession, number_id: int, wamid: str) -> list[MessageStatusEvent]:
    """Status reports the number sent for a wamid before its message was known, oldest first."""
    result = await session.execute(
        select(MessageStatusEvent)
        .where(
            MessageStatusEvent.number_id == number_id,
            MessageStatusEvent.wamid == wamid,
            MessageStatusEvent.message_id.is_(None),
        )
        .order_by(MessageStatusEvent.timestamp, MessageStatusEvent.id)
    )
    return list(result.scalars())


async def link_status_event(session: AsyncSession, status_event_id: int, message_id: int) -> None:
    """Attach a status report to its message."""
    await session.execute(
        update(MessageStatusEvent)
        .where(MessageStatusEvent.id == status_event_id)
        .values(message_id=message_id)
    )


async def status_history(session: AsyncSession, message_ids: list[int]) -> list[MessageStatusEvent]:
    """Status reports of the given messages, in the order Meta timed them."""
    if not message_ids:
        return []
    result = await session.execute(
        select(MessageStatusEvent)
        .where(MessageStatusEvent.message_id.in_(message_ids))
        .order_by(MessageStatusEvent.timestamp, MessageStatusEvent.id)
    )
    return list(result.scalars())


async def page_in_conversation(
    session: AsyncSession, conversation_id: int, *, limit: int, after: tuple[datetime, int] | None
) -> list[Message]:
    """Messages in chronological order; `after` is the (timestamp, id) of the previous page's last row."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if after is not None:
        at, message_id = after
        stmt = stmt.where(or_(Message.timestamp > at, and_(Message.timestamp == at, Message.id > message_id)))
    result = await session.execute(stmt.order_by(Message.timestamp, Message.id).limit(limit))
    return list(result.scalars())


async def insert_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert messages in one statement, skipping wamids already stored; returns the new ids by wamid."""
    if not rows:
        return {}
    connection = await session.connection()
    stmt = insert_ignoring_conflicts(session, table_of(Message)).returning(Message.id, Message.wamid)
    result = await connection.execute(stmt, rows)
    return {wamid: message_id for message_id, wamid in result.all()}


async def insert_status_events(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> list[tuple[int, int, str, str]]:
    """Record status reports in one statement; returns (id, number_id, wamid, status) of the new ones."""
    if not rows:
        return []
    connection = await session.connection()
    table = table_of(MessageStatusEvent)
    stmt = insert_ignoring_conflicts(session, table).returning(
        table.c.id, table.c.number_id, table.c.wamid, table.c.status
    )
    return [(row[0], row[1], row[2], row[3]) for row in (await connection.execute(stmt, rows)).all()]


async def by_wamids_locked(session: AsyncSession, wamids: set[str]) -> dict[str, Message]:
    """Messages with these wamids, locked for update in id order, in one query."""
    if not wamids:
        return {}
    stmt = (
        select(Message)
        .options(defer(Message.content))  # status updates never need the content
        .where(one_of(session, Message.wamid, sorted(wamids)))
        .order_by(Message.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {m.wamid: m for m in (await session.execute(stmt)).scalars() if m.wamid}


async def link_status_events(session: AsyncSession, links: list[dict[str, int]]) -> None:
    """Attach status reports to their messages (`id`, `message_id` pairs) in one statement."""
    if links:
        connection = await session.connection()
        table = table_of(MessageStatusEvent)
        stmt = update(table).where(table.c.id == bindparam("event_id")).values(message_id=bindparam("mid"))
        await connection.execute(
            stmt, [{"event_id": link["id"], "mid": link["message_id"]} for link in links]
        )
