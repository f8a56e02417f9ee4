"""Conversations API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.contacts.models import Contact
from layanify.contacts.schemas import ContactRead
from layanify.conversations import repository, service
from layanify.conversations.models import Conversation
from layanify.conversations.schemas import ConversationRead
from layanify.db.base import utcnow
from layanify.pagination import MAX_LIMIT, ObjectId, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


def to_read(conversation: Conversation, contact: Contact) -> ConversationRead:
    """The API view of a conversation."""
    expires = conversation.window_expires_at
    return ConversationRead(
        id=conversation.id,
        number_id=conversation.number_id,
        contact=ContactRead.model_validate(contact),
        status=conversation.status,
        last_message_at=conversation.last_message_at,
        last_message_preview=conversation.last_message_preview,
        last_inbound_at=conversation.last_inbound_at,
        window_expires_at=expires,
        window_open=expires is not None and expires > utcnow(),
        unread_count=conversation.unread_count,
        auto_reply_enabled=conversation.auto_reply_enabled,
        created_at=conversation.created_at,
    )


@router.get("")
async def list_conversations(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> Page[ConversationRead]:
    """The workspace's conversations, newest activity first, with cursor pagination."""
    before = None
    if cursor:
        at, conversation_id = decode_cursor(cursor, (datetime, int))
        before = (at, conversation_id)
    rows = await repository.page_by_activity(session, principal.workspace_id, limit=limit + 1, before=before)
    items = [to_read(c, k) for c, k in rows[:limit]]
    last = rows[limit - 1][0] if len(rows) > limit else None
    next_cursor = encode_cursor(last.last_message_at, last.id) if last is not None else None
    return Page[ConversationRead](data=items, next_cursor=next_cursor)


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> ConversationRead:
    """One conversation of the workspace (404 for another workspace's)."""
    conversation = await service.get_conversation(session, principal.workspace_id, conversation_id)
    contact = await session.get(Contact, conversation.contact_id)
    assert contact is not None
    return to_read(conversation, contact)
