"""Queries of the privacy domain: everything held about a contact, and the oldest rows of a workspace.

Flushes, never commits. Deletes are set-based (subqueries, not id lists), so a contact with a long
history is erased in a handful of statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.automation.models import AutoReplySent
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.sql import is_postgresql
from layanify.media.models import MEDIA_MESSAGE_TYPES, MediaFile, MediaStatus
from layanify.messaging.models import ChatAction, Direction, Message, MessageStatus, MessageStatusEvent
from layanify.numbers.models import WhatsAppNumber
from layanify.privacy.models import RetentionPolicy
from layanify.webhooks.models import EventStatus, WebhookEvent

# Messages the outbox still owns: a purge leaves them alone, an erasure cancels them with the rest.
IN_OUTBOX = (MessageStatus.QUEUED.value, MessageStatus.SENDING.value)


# --- A contact ------------------------------------------------------------------------------------


async def contact_locked(session: AsyncSession, workspace_id: int, contact_id: int) -> Contact | None:
    """The workspace's contact, locked for this transaction on PostgreSQL (SQLite has one writer)."""
    stmt = select(Contact).where(Contact.id == contact_id, Contact.workspace_id == workspace_id)
    if is_postgresql(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def numbers_of(session: AsyncSession, workspace_id: int) -> dict[int, str]:
    """Every number the workspace has had (removed ones too): id → Meta's phone number id."""
    rows = await session.execute(
        select(WhatsAppNumber.id, WhatsAppNumber.phone_number_id).where(
            WhatsAppNumber.workspace_id == workspace_id
        )
    )
    return {number_id: phone_number_id for number_id, phone_number_id in rows.all()}


def conversation_ids(workspace_id: int, contact_id: int) -> Select[int]:
    """The contact's conversations, as a subquery."""
    return select(Conversation.id).where(
        Conversation.workspace_id == workspace_id, Conversation.contact_id == contact_id
    )


def message_ids(workspace_id: int, contact_id: int) -> Select[int]:
    """The messages of the contact's conversations, as a subquery."""
    return select(Message.id).where(Message.conversation_id.in_(conversation_ids(workspace_id, contact_id)))


def _wamids(workspace_id: int, contact_id: int) -> Select[str | None]:
    return select(Message.wamid).where(
        Message.conversation_id.in_(conversation_ids(workspace_id, contact_id)), Message.wamid.is_not(None)
    )


def _status_events_of(
    workspace_id: int, contact_id: int, number_ids: Iterable[int], identities: Iterable[str]
) -> ColumnElement[bool]:
    """Status reports about the contact: those of its messages, and the unmatched ones that name one of
    its messages' wamids or the contact as recipient (on the workspace's numbers)."""
    numbers = list(number_ids)
    return or_(
        MessageStatusEvent.message_id.in_(message_ids(workspace_id, contact_id)),
        and_(
            MessageStatusEvent.number_id.in_(numbers),
            or_(
                MessageStatusEvent.wamid.in_(_wamids(workspace_id, contact_id)),
                MessageStatusEvent.recipient_id.in_(list(identities)),
            ),
        ),
    )


async def conversations_of(session: AsyncSession, workspace_id: int, contact_id: int) -> list[Conversation]:
    """The contact's conversations, oldest first."""
    stmt = (
        select(Conversation)
        .where(Conversation.workspace_id == workspace_id, Conversation.contact_id == contact_id)
        .order_by(Conversation.id)
    )
    return list((await session.execute(stmt)).scalars())


async def messages_of(session: AsyncSession, workspace_id: int, contact_id: int) -> list[Message]:
    """Every message with the contact, in the order they were written."""
    stmt = (
        select(Message)
        .where(Message.id.in_(message_ids(workspace_id, contact_id)))
        .order_by(Message.timestamp, Message.id)
    )
    return list((await session.execute(stmt)).scalars())


async def status_events_of(
    session: AsyncSession,
    workspace_id: int,
    contact_id: int,
    number_ids: Iterable[int],
    identities: Iterable[str],
) -> list[MessageStatusEvent]:
    """Every status report about the contact (see `_status_events_of`), oldest first."""
    stmt = (
        select(MessageStatusEvent)
        .where(_status_events_of(workspace_id, contact_id, number_ids, identities))
        .order_by(MessageStatusEvent.timestamp, MessageStatusEvent.id)
    )
    return list((await session.execute(stmt)).scalars())


async def media_of_messages(session: AsyncSession, workspace_id: int, contact_id: int) -> list[MediaFile]:
    """The files of the contact's messages (inbound media we downloaded)."""
    stmt = (
        select(MediaFile)
        .where(
            MediaFile.workspace_id == workspace_id,
            MediaFile.message_id.in_(message_ids(workspace_id, contact_id)),
        )
        .order_by(MediaFile.id)
    )
    return list((await session.execute(stmt)).scalars())


async def uploads_by_meta_id(session: AsyncSession, workspace_id: int, meta_ids: set[str]) -> list[MediaFile]:
    """The workspace's uploaded (outbound) files with these Meta media ids."""
    if not meta_ids:
        return []
    stmt = (
        select(MediaFile)
        .where(
            MediaFile.workspace_id == workspace_id,
            MediaFile.message_id.is_(None),
            MediaFile.direction == Direction.OUTBOUND.value,
            MediaFile.meta_media_id.in_(sorted(meta_ids)),
        )
        .order_by(MediaFile.id)
    )
    return list((await session.execute(stmt)).scalars())


async def other_outbound_media(
    session: AsyncSession, workspace_id: int, contact_id: int, *, since: datetime
) -> list[Message]:
    """The workspace's outbound media messages to anyone else since `since` (to find shared uploads)."""
    stmt = select(Message).where(
        Message.workspace_id == workspace_id,
        Message.direction == Direction.OUTBOUND.value,
        Message.type.in_(MEDIA_MESSAGE_TYPES),
        Message.created_at >= since,
        Message.conversation_id.not_in(conversation_ids(workspace_id, contact_id)),
    )
    return list((await session.execute(stmt)).scalars())


async def chat_actions_of(session: AsyncSession, workspace_id: int, contact_id: int) -> list[ChatAction]:
    """The mark-as-read and typing calls made in the contact's conversations."""
    stmt = (
        select(ChatAction)
        .where(ChatAction.conversation_id.in_(conversation_ids(workspace_id, contact_id)))
        .order_by(ChatAction.id)
    )
    return list((await session.execute(stmt)).scalars())


async def auto_replies_of(session: AsyncSession, contact_id: int) -> list[AutoReplySent]:
    """When each auto-reply rule last answered the contact."""
    stmt = select(AutoReplySent).where(AutoReplySent.contact_id == contact_id).order_by(AutoReplySent.id)
    return list((await session.execute(stmt)).scalars())


async def workspace_events(
    session: AsyncSession, workspace_id: int, *, after_id: int, limit: int
) -> list[WebhookEvent]:
    """The next raw events by id that are the workspace's or nobody's yet (pending, unknown number)."""
    stmt = (
        select(WebhookEvent)
        .where(
            or_(WebhookEvent.workspace_id == workspace_id, WebhookEvent.workspace_id.is_(None)),
            WebhookEvent.id > after_id,
        )
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def shared_event_ids(
    session: AsyncSession, workspace_id: int, *, after_id: int, limit: int
) -> tuple[list[int], int]:
    """Among the next `limit` events filed under a lower workspace id, those whose summary says they
    concern this workspace too (one POST can carry several workspaces' numbers; it is filed under the
    lowest). Returns their ids and the last id looked at (0 when there was none)."""
    stmt = (
        select(WebhookEvent.id, WebhookEvent.summary)
        .where(WebhookEvent.workspace_id < workspace_id, WebhookEvent.id > after_id)
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    found = [
        event_id
        for event_id, summary in rows
        if isinstance(summary, dict) and workspace_id in (summary.get("workspace_ids") or [])
    ]
    return found, rows[-1][0] if rows else 0


async def events_by_ids(session: AsyncSession, ids: list[int]) -> list[WebhookEvent]:
    """Raw events by id."""
    if not ids:
        return []
    stmt = select(WebhookEvent).where(WebhookEvent.id.in_(ids)).order_by(WebhookEvent.id)
    return list((await session.execute(stmt)).scalars())


async def count_in_outbox(session: AsyncSession, workspace_id: int, contact_id: int) -> int:
    """The contact's messages still queued or being sent."""
    stmt = select(func.count()).where(
        Message.conversation_id.in_(conversation_ids(workspace_id, contact_id)), Message.status.in_(IN_OUTBOX)
    )
    return int((await session.execute(stmt)).scalar_one())


async def delete_contact_rows(
    session: AsyncSession,
    workspace_id: int,
    contact_id: int,
    *,
    number_ids: Iterable[int],
    identities: Iterable[str],
    media_ids: list[int],
) -> dict[str, int]:
    """Delete every row about the contact, dependants first; returns how many of each kind."""
    counts: dict[str, int] = {}

    async def run(kind: str, stmt: Any) -> None:
        result = await session.execute(stmt.execution_options(synchronize_session=False))
        counts[kind] = int(getattr(result, "rowcount", 0) or 0)

    conversations = conversation_ids(workspace_id, contact_id)
    await run(
        "status_events",
        delete(MessageStatusEvent).where(_status_events_of(workspace_id, contact_id, number_ids, identities)),
    )
    await run("chat_actions", delete(ChatAction).where(ChatAction.conversation_id.in_(conversations)))
    await run("auto_replies", delete(AutoReplySent).where(AutoReplySent.contact_id == contact_id))
    if media_ids:
        await run("media_files", delete(MediaFile).where(MediaFile.id.in_(media_ids)))
    else:
        counts["media_files"] = 0
    await run("messages", delete(Message).where(Message.conversation_id.in_(conversations)))
    await run(
        "conversations",
        delete(Conversation).where(
            Conversation.workspace_id == workspace_id, Conversation.contact_id == contact_id
        ),
    )
    await run(
        "contacts", delete(Contact).where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
    )
    return counts


# --- Retention ------------------------------------------------------------------------------------


async def policy(session: AsyncSession, workspace_id: int) -> RetentionPolicy | None:
    """The workspace's retention policy, if an owner ever saved one."""
    return await session.get(RetentionPolicy, workspace_id)


async def policies_with_limits(session: AsyncSession) -> list[int]:
    """The workspaces that keep something for a limited time (the purge's work list)."""
    stmt = (
        select(RetentionPolicy.workspace_id)
        .where(
            or_(
                RetentionPolicy.messages_days.is_not(None),
                RetentionPolicy.media_days.is_not(None),
                RetentionPolicy.webhook_events_days.is_not(None),
            )
        )
        .order_by(RetentionPolicy.workspace_id)
    )
    return list((await session.execute(stmt)).scalars())


async def oldest_messages(
    session: AsyncSession, workspace_id: int, before: datetime, limit: int
) -> list[int]:
    """Up to `limit` of the workspace's messages written before `before`, oldest first (not those the
    outbox still owns). A range scan of `ix_messages_workspace_timestamp`."""
    stmt = (
        select(Message.id)
        .where(
            Message.workspace_id == workspace_id,
            Message.timestamp < before,
            Message.status.not_in(IN_OUTBOX),
        )
        .order_by(Message.timestamp, Message.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def stored_files_of_messages(session: AsyncSession, ids: list[int]) -> list[str]:
    """The storage keys of these messages' files."""
    stmt = select(MediaFile.storage_key).where(
        MediaFile.message_id.in_(ids), MediaFile.storage_key.is_not(None)
    )
    return [key for key in (await session.execute(stmt)).scalars() if key]


async def delete_messages(session: AsyncSession, ids: list[int]) -> int:
    """Delete messages and what hangs on them (status history, files' rows, chat actions)."""
    opts = {"synchronize_session": False}
    await session.execute(
        delete(MessageStatusEvent).where(MessageStatusEvent.message_id.in_(ids)).execution_options(**opts)
    )
    await session.execute(
        delete(ChatAction)
        .where(or_(ChatAction.message_id.in_(ids), ChatAction.reply_message_id.in_(ids)))
        .execution_options(**opts)
    )
    await session.execute(
        update(AutoReplySent)
        .where(AutoReplySent.message_id.in_(ids))
        .values(message_id=None)
        .execution_options(**opts)
    )
    await session.execute(delete(MediaFile).where(MediaFile.message_id.in_(ids)).execution_options(**opts))
    result = await session.execute(delete(Message).where(Message.id.in_(ids)).execution_options(**opts))
    return int(getattr(result, "rowcount", 0) or 0)


async def old_unmatched_statuses(
    session: AsyncSession, number_ids: list[int], before: datetime, limit: int
) -> list[int]:
    """Status reports that never matched a message, older than `before`, on the workspace's numbers."""
    if not number_ids:
        return []
    stmt = (
        select(MessageStatusEvent.id)
        .where(
            MessageStatusEvent.message_id.is_(None),
            MessageStatusEvent.number_id.in_(number_ids),
            MessageStatusEvent.timestamp < before,
        )
        .order_by(MessageStatusEvent.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def delete_status_events(session: AsyncSession, ids: list[int]) -> None:
    """Delete status reports by id."""
    await session.execute(
        delete(MessageStatusEvent)
        .where(MessageStatusEvent.id.in_(ids))
        .execution_options(synchronize_session=False)
    )


async def clear_old_previews(session: AsyncSession, workspace_id: int, before: datetime) -> None:
    """Conversations whose last message is gone keep no preview of its text."""
    await session.execute(
        update(Conversation)
        .where(
            Conversation.workspace_id == workspace_id,
            Conversation.last_message_at < before,
            Conversation.last_message_preview != "",
        )
        .values(last_message_preview="")
        .execution_options(synchronize_session=False)
    )


async def old_stored_files(
    session: AsyncSession, workspace_id: int, before: datetime, limit: int
) -> list[tuple[int, str]]:
    """Up to `limit` of the workspace's stored files created before `before`: (id, storage key)."""
    stmt = (
        select(MediaFile.id, MediaFile.storage_key)
        .where(
            MediaFile.workspace_id == workspace_id,
            MediaFile.status == MediaStatus.STORED.value,
            MediaFile.created_at < before,
        )
        .order_by(MediaFile.id)
        .limit(limit)
    )
    return [(media_id, key or "") for media_id, key in (await session.execute(stmt)).all()]


async def mark_files_removed(session: AsyncSession, ids: list[int], reason: str) -> None:
    """Keep the rows (the messages still say a file was there) without their bytes."""
    await session.execute(
        update(MediaFile)
        .where(MediaFile.id.in_(ids))
        .values(status=MediaStatus.FAILED.value, storage_key=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )


async def event_page(
    session: AsyncSession, workspace_id: int, after_id: int, limit: int
) -> list[tuple[int, datetime, str]]:
    """The workspace's next raw events by id: (id, received_at, status). A range scan of
    `ix_webhook_events_workspace`; ids grow with the time of receipt."""
    stmt = (
        select(WebhookEvent.id, WebhookEvent.received_at, WebhookEvent.status)
        .where(WebhookEvent.workspace_id == workspace_id, WebhookEvent.id > after_id)
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    return [(event_id, at, status) for event_id, at, status in (await session.execute(stmt)).all()]


async def delete_events(session: AsyncSession, ids: list[int]) -> int:
    """Delete raw events by id (never pending ones: they are still to be processed)."""
    result = await session.execute(
        delete(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.status != EventStatus.PENDING.value)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
