"""Messages API (reading; sending arrives with the outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.conversations import service as conversations
from layanify.messaging import repository, service
from layanify.messaging.models import Message, MessageStatusEvent
from layanify.messaging.schemas import (
    MessageContent,
    MessageError,
    MessageRead,
    StatusHistoryItem,
    StatusTimes,
)
from layanify.pagination import MAX_LIMIT, ObjectId, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1", tags=["messages"])


def to_read(message: Message, history: list[MessageStatusEvent] | None = None) -> MessageRead:
    """The API view of a message."""
    error = None
    if message.error_code is not None or message.error_title:
        error = MessageError(
            code=message.error_code,
            title=message.error_title,
            details=message.error_details,
            href=message.error_href,
        )
    return MessageRead(
        id=message.id,
        conversation_id=message.conversation_id,
        wamid=message.wamid,
        direction=message.direction,
        content=MessageContent.model_validate(message.content),
        status=message.status,
        timestamp=message.timestamp,
        is_automated=message.is_automated,
        reply_to_wamid=message.reply_to_wamid,
        status_times=StatusTimes(
            sent=message.sent_at,
            delivered=message.delivered_at,
            read=message.read_at,
            played=message.played_at,
            failed=message.failed_at,
        ),
        error=error,
        status_history=(
            [
                StatusHistoryItem(status=h.status, timestamp=h.timestamp, received_at=h.received_at)
                for h in history
            ]
            if history is not None
            else None
        ),
    )


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: ObjectId,
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> Page[MessageRead]:
    """A conversation's messages in chronological order, with cursor pagination."""
    conversation = await conversations.get_conversation(session, principal.workspace_id, conversation_id)
    after = None
    if cursor:
        at, message_id = decode_cursor(cursor, (datetime, int))
        after = (at, message_id)
    rows = await repository.page_in_conversation(session, conversation.id, limit=limit + 1, after=after)
    items = [to_read(m) for m in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(last.timestamp, last.id) if last is not None else None
    return Page[MessageRead](data=items, next_cursor=next_cursor)


@router.get("/messages/{message_id}")
async def get_message(message_id: ObjectId, principal: CurrentPrincipal, session: SessionDep) -> MessageRead:
    """One message with its full status history (404 for another workspace's)."""
    message = await service.get_message(session, principal.workspace_id, message_id)
    history = await repository.status_history(session, [message.id])
    return to_read(message, history)
