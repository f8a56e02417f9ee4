"""Queries for conversations; flushes, never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.sql import insert_ignoring_conflicts, one_of, table_of

# Conversations with no message yet sort after every active one.
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


async def by_number_and_contact(
    session: AsyncSession, number_id: int, contact_id: int, *, lock: bool = False
) -> Conversation | None:
    """The conversation between a number and a contact.

    `lock` holds its row until commit (PostgreSQL; SQLite has one writer anyway) and re-reads it, so
    concurrent workers updating the same conversation never overwrite each other's counts and times.
    """
    stmt = select(Conversation).where(
        Conversation.number_id == number_id, Conversation.contact_id == contact_id
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_if_absent(session: AsyncSession, workspace_id: int, number_id: int, contact_id: int) -> None:
    """Open the conversation unless it exists (another worker may have just opened it)."""
    stmt = insert_ignoring_conflicts(session, Conversation).values(
        workspace_id=workspace_id,
        number_id=number_id,
        contact_id=contact_id,
        status="open",
        last_message_preview="",
        unread_count=0,
    )
    await session.execute(stmt)


async def in_workspace(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation | None:
    """The conversation, only when it belongs to the workspace."""
    result = await session.execute(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
        )
    )
    return result.scalar_one_or_none()


async def page_by_activity(
    session: AsyncSession, workspace_id: int, *, limit: int, before: tuple[datetime, int] | None
) -> list[tuple[Conversation, Contact]]:
    """Newest activity first; `before` is the (last_message_at, id) of the previous page's last row."""
    activity = Conversation.last_message_at
    stmt = (
        select(Conversation, Contact)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.workspace_id == workspace_id, activity.is_not(None))
    )
    if before is not None:
        at, conversation_id = before
        stmt = stmt.where(or_(activity < at, and_(activity == at, Conversation.id < conversation_id)))
    stmt = stmt.order_by(activity.desc(), Conversation.id.desc()).limit(limit)
    result = await session.execute(stmt)
    return [(c, k) for c, k in result.all()]


async def insert_many_if_absent(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """Open the conversations that do not exist yet, in one statement."""
    if rows:
        connection = await session.connection()
        await connection.execute(insert_ignoring_conflicts(session, table_of(Conversation)), rows)


async def by_pairs_locked(
    session: AsyncSession, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], Conversation]:
    """Conversations by (number_id, contact_id), locked for update in id order (one query; no deadlock
    between two workers taking overlapping sets, since both lock in the same order)."""
    if not pairs:
        return {}
    stmt = (
        select(Conversation)
        .where(
            one_of(session, Conversation.contact_id, sorted({c for _, c in pairs})),
            one_of(session, Conversation.number_id, {n for n, _ in pairs}),
        )
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {(c.number_id, c.contact_id): c for c in (await session.execute(stmt)).scalars()}
    return {pair: conversation for pair, conversation in found.items() if pair in pairs}
