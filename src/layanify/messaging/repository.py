"""Queries for messages and status history; flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from layanify.crypto import sealing
from layanify.db.sql import insert_ignoring_conflicts, one_of, table_of
from layanify.messaging.models import STATUS_RANK, ChatAction, Message, MessageStatusEvent
from layanify.numbers.models import WhatsAppNumber


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert a message; None when its wamid is already stored (a redelivered webhook)."""
    await sealing.seal_message_rows(session, [values])
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
    """Status reports of the given messages, in the order Meta timed them.

    Meta's timestamps are whole seconds, and a message is often sent and delivered (even read) within
    one: reports timed alike are ordered by rank (sent before delivered before read), not by when their
    webhooks happened to be stored.
    """
    if not message_ids:
        return []
    rank = case(STATUS_RANK, value=MessageStatusEvent.status, else_=len(STATUS_RANK))
    result = await session.execute(
        select(MessageStatusEvent)
        .where(MessageStatusEvent.message_id.in_(message_ids))
        .order_by(MessageStatusEvent.timestamp, rank, MessageStatusEvent.id)
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
    await sealing.seal_message_rows(session, rows)
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


# --- The outbox ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """An outbound message a worker now owns until `lease_expires_at`."""

    id: int
    workspace_id: int
    number_id: int
    recipient: str
    type: str
    content: dict[str, Any]
    reply_to_wamid: str | None
    attempts: int


async def claim_due(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int, per_number: int
) -> list[ClaimedMessage]:
    """Move up to `limit` due `queued` messages to `sending` (at most `per_number` per number, so one
    number's backlog never starves the others), skipping numbers that are disconnected or removed.

    The UPDATE re-checks `status = 'queued'`: two workers racing for a row serialise on its lock and
    the second finds it no longer queued, so a message is claimed once.
    """
    messages = table_of(Message)
    numbers = table_of(WhatsAppNumber)
    ranked = (
        select(
            messages.c.id,
            func.row_number()
            .over(partition_by=messages.c.number_id, order_by=(messages.c.next_attempt_at, messages.c.id))
            .label("rank"),
            messages.c.next_attempt_at,
        )
        .join(numbers, numbers.c.id == messages.c.number_id)
        .where(
            messages.c.status == "queued",
            messages.c.next_attempt_at <= now,
            numbers.c.connection_state != "disconnected",
            numbers.c.deleted_at.is_(None),
        )
        .subquery()
    )
    candidates = (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_number)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    stmt = (
        update(messages)
        .where(one_of(session, messages.c.id, ids), messages.c.status == "queued")
        .values(status="sending", attempts=messages.c.attempts + 1, lease_expires_at=lease_until)
        .returning(
            messages.c.id,
            messages.c.workspace_id,
            messages.c.number_id,
            messages.c.recipient,
            messages.c.type,
            messages.c.content,
            messages.c.reply_to_wamid,
            messages.c.attempts,
        )
    )
    rows = (await session.execute(stmt)).all()
    return sorted(
        (ClaimedMessage(r[0], r[1], r[2], r[3] or "", r[4], r[5], r[6], r[7]) for r in rows),
        key=lambda m: m.id,
    )


async def release_expired_claims(session: AsyncSession, *, before: datetime, now: datetime) -> int:
    """Queue again the messages whose worker's claim ran out before `before` (it crashed or hung).

    Only messages still `sending` are touched: one whose send reached Meta has been moved on by its
    status webhook (matched by `biz_opaque_callback_data`) in the meantime, so it is not sent twice.
    """
    messages = table_of(Message)
    stmt = (
        update(messages)
        .where(messages.c.status == "sending", messages.c.lease_expires_at < before)
        .values(status="queued", next_attempt_at=now, lease_expires_at=None)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def record_sent(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store the wamid and `sent` of accepted sends (`mid`, `wamid`, `recipient`, `at` per row).

    A status webhook may have got there first (and moved the message further): then only the wamid
    is filled in, and the status is left where it is.
    """
    if not rows:
        return
    messages = table_of(Message)
    # Spelled out: an IN list would be an "expanding" parameter, which executemany cannot take.
    in_outbox = or_(messages.c.status == "queued", messages.c.status == "sending")

    def cleared(column: Any) -> Any:
        # The last attempt's error goes once it is sent, but a failure a webhook reported stays.
        return case((in_outbox, None), else_=column)

    connection = await session.connection()
    await connection.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"))
        .values(
            wamid=func.coalesce(messages.c.wamid, bindparam("wamid")),
            recipient=bindparam("recipient"),
            status=case((in_outbox, "sent"), else_=messages.c.status),
            sent_at=func.coalesce(messages.c.sent_at, bindparam("at")),
            lease_expires_at=None,
            next_attempt_at=None,
            error_code=cleared(messages.c.error_code),
            error_title=cleared(messages.c.error_title),
            error_details=cleared(messages.c.error_details),
            error_action=cleared(messages.c.error_action),
        ),
        rows,
    )


async def record_retry(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Queue messages again for `at` (`mid`, `at`, `refund`, error fields), unless they moved on.

    `refund` gives the attempt back (a pause that was not the message's fault, e.g. a disconnected
    number or a rate-limit wait). The last error stays visible while the message waits.
    """
    if not rows:
        return
    messages = table_of(Message)
    connection = await session.connection()
    await connection.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"), messages.c.status == "sending")
        .values(
            status="queued",
            next_attempt_at=bindparam("at"),
            lease_expires_at=None,
            attempts=messages.c.attempts - bindparam("refund"),
            error_code=bindparam("code"),
            error_title=bindparam("title"),
            error_details=bindparam("details"),
            error_action=bindparam("action"),
        ),
        rows,
    )


async def record_failed(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Fail messages for good with Meta's error and the user's action (`mid`, `at`, error fields)."""
    if not rows:
        return
    messages = table_of(Message)
    connection = await session.connection()
    await connection.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"), messages.c.status == "sending")
        .values(
            status="failed",
            failed_at=bindparam("at"),
            next_attempt_at=None,
            lease_expires_at=None,
            error_code=bindparam("code"),
            error_title=bindparam("title"),
            error_details=bindparam("details"),
            error_action=bindparam("action"),
        ),
        rows,
    )


async def by_callback(session: AsyncSession, message_id: int, number_id: int) -> Message | None:
    """Our outbound message a status webhook's `biz_opaque_callback_data` names, locked for update."""
    stmt = (
        select(Message)
        .where(
            Message.id == message_id,
            Message.number_id == number_id,
            Message.direction == "outbound",
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def unmatched_for_wamids(session: AsyncSession, wamids: list[str]) -> list[MessageStatusEvent]:
    """Status reports that arrived before their message had its wamid."""
    if not wamids:
        return []
    stmt = (
        select(MessageStatusEvent)
        .where(one_of(session, MessageStatusEvent.wamid, wamids), MessageStatusEvent.message_id.is_(None))
        .order_by(MessageStatusEvent.id)
    )
    return list((await session.execute(stmt)).scalars())


async def fail_queued_of_number(session: AsyncSession, number_id: int, *, at: datetime, reason: str) -> int:
    """Fail the number's messages still waiting in the outbox (it was removed); returns how many.

    Messages a worker is sending right now (`sending`) finish their attempt and are recorded as usual.
    """
    messages = table_of(Message)
    result = await session.execute(
        update(messages)
        .where(messages.c.number_id == number_id, messages.c.status == "queued")
        .values(
            status="failed",
            failed_at=at,
            next_attempt_at=None,
            error_code=None,
            error_title="The sending number was removed",
            error_details=reason,
            error_action="reconnect",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_automated(session: AsyncSession, conversation_id: int, *, at: datetime) -> list[int]:
    """Cancel the conversation's automated replies still waiting for their delay (an agent answered
    first), and the typing indicators announcing them; returns the cancelled messages' ids.

    Only `queued` replies are touched: one a worker is sending right now goes out as it would anyway.
    """
    messages = table_of(Message)
    result = await session.execute(
        update(messages)
        .where(
            messages.c.conversation_id == conversation_id,
            messages.c.status == "queued",
            messages.c.is_automated.is_(True),
        )
        .values(status="cancelled", next_attempt_at=None, failed_at=None, updated_at=at)
        .returning(messages.c.id)
    )
    ids = list(result.scalars())
    if ids:
        actions = table_of(ChatAction)
        await session.execute(
            update(actions)
            .where(one_of(session, actions.c.reply_message_id, ids), actions.c.status == "pending")
            .values(status="cancelled", done_at=at, updated_at=at)
        )
    return ids


async def newest_in_conversation(session: AsyncSession, conversation_id: int, *, limit: int) -> list[Message]:
    """The newest `limit` messages of a conversation, returned oldest first."""
    stmt = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(limit)
    )
    return list(reversed(list((await session.execute(stmt)).scalars())))


async def brief(session: AsyncSession, message_ids: list[int]) -> list[tuple[int, int, int, str]]:
    """(id, workspace_id, conversation_id, status) of these messages: what a live event names."""
    if not message_ids:
        return []
    messages = table_of(Message)
    rows = await session.execute(
        select(messages.c.id, messages.c.workspace_id, messages.c.conversation_id, messages.c.status).where(
            one_of(session, messages.c.id, message_ids)
        )
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows.all()]
