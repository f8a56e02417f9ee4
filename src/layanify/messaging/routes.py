"""Messages API: read conversations' messages, send through the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.conversations import service as conversations
from layanify.db.session import after_commit_call
from layanify.messaging import repository, service
from layanify.messaging.models import Message, MessageStatusEvent
from layanify.messaging.schemas import (
    MessageContent,
    MessageError,
    MessageRead,
    SendInConversation,
    SendMessage,
    StatusHistoryItem,
    StatusTimes,
)
from layanify.pagination import MAX_LIMIT, ObjectId, Page, decode_cursor, encode_cursor
from layanify.realtime.publish import announce_message_created
from layanify.whatsapp.errors import Action, error_for_code

router = APIRouter(prefix="/api/v1", tags=["messages"])

# Words for the actions of errors that carry no Meta code (our own refusals and give-ups).
REMEDIES = {
    Action.RETRY_LATER.value: "Sending will be retried automatically.",
    Action.RECONNECT.value: "Update the number's access token and test the connection.",
}


def to_read(message: Message, history: list[MessageStatusEvent] | None = None) -> MessageRead:
    """The API view of a message."""
    error = None
    if message.error_code is not None or message.error_title:
        remedy = None
        if message.error_action:
            remedy = (
                error_for_code(message.error_code).remedy
                if message.error_code
                else REMEDIES.get(message.error_action)
            )
        error = MessageError(
            code=message.error_code,
            title=message.error_title,
            details=message.error_details,
            href=message.error_href,
            action=message.error_action,
            remedy=remedy,
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
        number_id=message.number_id,
        recipient=message.recipient,
        attempts=message.attempts or 0,
        next_attempt_at=message.next_attempt_at,
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


def _wake_outbox(request: Request, session: AsyncSession) -> None:
    """Wake the in-process outbox right after the commit (a queued message, a reconnected number)."""
    after_commit_call(session, getattr(request.app.state, "wake_outbox", None))


def _announce_queued(request: Request, session: AsyncSession, message: Message) -> None:
    """After the commit, tell the workspace's open pages about the queued message (no broker: nothing)."""
    announce_message_created(
        session,
        getattr(request.app.state, "broker", None),
        workspace_id=message.workspace_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
    )


@router.post("/messages", status_code=status.HTTP_202_ACCEPTED)
async def send_message(
    request: Request, data: SendMessage, principal: CurrentPrincipal, session: SessionDep
) -> MessageRead:
    """Queue a message; it is stored `queued` and sent by the outbox. Follow it with GET /messages/{id}.

    409 `template_required` when the customer has not written in 24 hours and this is not a template;
    409 `number_not_connected` when the number cannot send; 422 for an invalid recipient or content.
    """
    message = await service.queue_message(
        session,
        workspace_id=principal.workspace_id,
        user_id=principal.user_id,
        number_id=data.number_id,
        to=data.to,
        content=data.content,
        reply_to=data.reply_to,
        default_region=request.app.state.settings.default_region,
    )
    _wake_outbox(request, session)
    _announce_queued(request, session, message)
    return to_read(message)


@router.post("/conversations/{conversation_id}/messages", status_code=status.HTTP_202_ACCEPTED)
async def send_in_conversation(
    request: Request,
    conversation_id: ObjectId,
    data: SendInConversation,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> MessageRead:
    """Queue a reply in a conversation (same rules as POST /messages)."""
    message = await service.queue_message(
        session,
        workspace_id=principal.workspace_id,
        user_id=principal.user_id,
        conversation_id=conversation_id,
        content=data.content,
        reply_to=data.reply_to,
        default_region=request.app.state.settings.default_region,
    )
    _wake_outbox(request, session)
    _announce_queued(request, session, message)
    return to_read(message)
