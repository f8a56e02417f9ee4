"""Queries for behaviour settings, auto-reply cooldowns and chat actions; flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.automation.models import AutoReplySent, NumberSettings
from layanify.conversations.models import Conversation
from layanify.db.sql import insert_ignoring_conflicts, one_of, table_of
from layanify.messaging.models import ChatAction, Direction, Message
from layanify.numbers.models import WhatsAppNumber


async def settings_of(session: AsyncSession, number_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The stored settings of these numbers (numbers with none use the defaults)."""
    ids = list(set(number_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(NumberSettings.number_id, NumberSettings.settings).where(
            one_of(session, NumberSettings.number_id, ids)
        )
    )
    return {number_id: settings for number_id, settings in rows.all()}


async def settings_for_messages(session: AsyncSession, message_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored settings of the numbers these messages' conversations belong to (one query; empty,
    and cheap, when none of them saved settings)."""
    stmt = select(NumberSettings.number_id, NumberSettings.settings).where(
        NumberSettings.number_id.in_(
            select(Conversation.number_id)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(one_of(session, Message.id, message_ids))
        )
    )
    return {number_id: settings for number_id, settings in (await session.execute(stmt)).all()}


async def settings_row(session: AsyncSession, number_id: int) -> NumberSettings | None:
    """A number's settings row, locked for an update on PostgreSQL."""
    stmt = select(NumberSettings).where(NumberSettings.number_id == number_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def inbound_with_conversations(
    session: AsyncSession, message_ids: list[int]
) -> list[tuple[Message, Conversation]]:
    """Newly stored inbound messages with their conversations, oldest first."""
    stmt = (
        select(Message, Conversation)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(one_of(session, Message.id, message_ids), Message.direction == Direction.INBOUND.value)
        .order_by(Message.timestamp, Message.id)
    )
    return [(m, c) for m, c in (await session.execute(stmt)).all()]


async def previous_inbound_at(session: AsyncSession, message: Message) -> datetime | None:
    """When the customer last wrote in this conversation before `message`."""
    stmt = select(func.max(Message.timestamp)).where(
        Message.conversation_id == message.conversation_id,
        Message.direction == Direction.INBOUND.value,
        Message.id != message.id,
        Message.timestamp <= message.timestamp,
        Message.type != "system",
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def agent_answered_since(session: AsyncSession, conversation_id: int, since: datetime) -> bool:
    """True when an agent (not an automation) wrote in the conversation at or after `since`."""
    stmt = (
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUTBOUND.value,
            Message.is_automated.is_(False),
            Message.timestamp >= since,
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def take_cooldown(
    session: AsyncSession,
    *,
    workspace_id: int,
    number_id: int,
    contact_id: int,
    rule: str,
    now: datetime,
    not_since: datetime,
) -> bool:
    """Record that `rule` answers the contact now, unless it already did after `not_since`.

    Atomic on both databases (an INSERT that ignores the existing row, else a conditional UPDATE), so
    two workers handling two messages of one customer at once send one reply, not two.
    """
    inserted = await session.execute(
        insert_ignoring_conflicts(session, AutoReplySent)
        .values(
            workspace_id=workspace_id, number_id=number_id, contact_id=contact_id, rule=rule, last_sent_at=now
        )
        .returning(table_of(AutoReplySent).c.id)
    )
    if inserted.first() is not None:
        return True
    table = table_of(AutoReplySent)
    updated = await session.execute(
        update(table)
        .where(
            table.c.number_id == number_id,
            table.c.contact_id == contact_id,
            table.c.rule == rule,
            table.c.last_sent_at <= not_since,
        )
        .values(last_sent_at=now)
        .returning(table.c.id)
    )
    return updated.first() is not None


async def note_reply_message(
    session: AsyncSession, *, number_id: int, contact_id: int, rule: str, message_id: int
) -> None:
    """Link the cooldown record to the reply it allowed."""
    table = table_of(AutoReplySent)
    await session.execute(
        update(table)
        .where(table.c.number_id == number_id, table.c.contact_id == contact_id, table.c.rule == rule)
        .values(message_id=message_id)
    )


async def pending_read(session: AsyncSession, conversation_id: int) -> ChatAction | None:
    """The conversation's mark-as-read call still waiting to be sent, if any."""
    stmt = (
        select(ChatAction)
        .where(
            ChatAction.conversation_id == conversation_id,
            ChatAction.status == "pending",
            ChatAction.kind == "read",
        )
        .order_by(ChatAction.id)
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def typing_since(session: AsyncSession, conversation_id: int, since: datetime) -> bool:
    """True when a typing indicator for the conversation is pending or was queued after `since`."""
    stmt = (
        select(ChatAction.id)
        .where(
            ChatAction.conversation_id == conversation_id,
            ChatAction.kind == "typing",
            or_(ChatAction.status == "pending", ChatAction.created_at >= since),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None


async def latest_inbound(session: AsyncSession, conversation_id: int) -> Message | None:
    """The customer's newest message in the conversation (system notices aside)."""
    stmt = (
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND.value,
            Message.type != "system",
        )
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_unread_inbound(session: AsyncSession, conversation_id: int) -> Message | None:
    """The newest customer message we have not marked read at Meta yet."""
    stmt = (
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND.value,
            Message.status == "received",
            Message.wamid.is_not(None),
            Message.type != "system",
        )
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class ClaimedAction:
    """A chat action a worker owns until its lease runs out."""

    id: int
    kind: str
    number_id: int
    conversation_id: int
    wamid: str
    message_id: int | None
    reply_message_id: int | None
    attempts: int


async def claim_due_actions(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedAction]:
    """Take up to `limit` due pending actions whose lease is free (a crashed worker's lease runs out)."""
    actions = table_of(ChatAction)
    numbers = table_of(WhatsAppNumber)
    free = or_(actions.c.lease_expires_at.is_(None), actions.c.lease_expires_at < now)
    candidates = (
        select(actions.c.id)
        .join(numbers, numbers.c.id == actions.c.number_id)
        .where(
            actions.c.status == "pending",
            actions.c.due_at <= now,
            free,
            numbers.c.connection_state != "disconnected",
            numbers.c.deleted_at.is_(None),
        )
        .order_by(actions.c.due_at, actions.c.id)
        .limit(limit)
    )
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    stmt = (
        update(actions)
        .where(one_of(session, actions.c.id, ids), actions.c.status == "pending", free)
        .values(lease_expires_at=lease_until, attempts=actions.c.attempts + 1)
        .returning(
            actions.c.id,
            actions.c.kind,
            actions.c.number_id,
            actions.c.conversation_id,
            actions.c.wamid,
            actions.c.message_id,
            actions.c.reply_message_id,
            actions.c.attempts,
        )
    )
    return sorted((ClaimedAction(*row) for row in (await session.execute(stmt)).all()), key=lambda a: a.id)


async def finish_action(
    session: AsyncSession,
    action_id: int,
    *,
    status: str,
    at: datetime,
    due_at: datetime | None = None,
    error_code: int | None = None,
    error: str | None = None,
) -> None:
    """File the outcome of a claimed action: `done`, `failed`, or `pending` again at `due_at`."""
    actions = table_of(ChatAction)
    values: dict[str, Any] = {
        "status": status,
        "lease_expires_at": None,
        "error_code": error_code,
        "last_error": error,
        "updated_at": at,
    }
    if status == "pending":
        values["due_at"] = due_at or at
    else:
        values["done_at"] = at
    await session.execute(update(actions).where(actions.c.id == action_id).values(**values))


async def mark_inbound_read(session: AsyncSession, conversation_id: int, up_to: int, *, at: datetime) -> int:
    """Inbound messages up to message `up_to` become `read` (Meta marks the earlier ones read too)."""
    messages = table_of(Message)
    target = select(messages.c.timestamp).where(messages.c.id == up_to).scalar_subquery()
    result = await session.execute(
        update(messages)
        .where(
            messages.c.conversation_id == conversation_id,
            messages.c.direction == Direction.INBOUND.value,
            messages.c.status == "received",
            or_(messages.c.timestamp < target, and_(messages.c.timestamp == target, messages.c.id <= up_to)),
        )
        .values(status="read", read_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)
