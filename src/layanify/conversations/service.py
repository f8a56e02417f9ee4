"""Conversation operations: open one per (number, contact), keep activity and the 24-hour window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.conversations import repository
from layanify.conversations.models import Conversation
from layanify.errors import NotFound

SERVICE_WINDOW = timedelta(hours=24)


async def open_conversation(
    session: AsyncSession, workspace_id: int, number_id: int, contact_id: int
) -> Conversation:
    """The conversation between the number and the contact, opened if there is none; locked for update."""
    conversation = await repository.by_number_and_contact(session, number_id, contact_id, lock=True)
    if conversation is None:
        await repository.insert_if_absent(session, workspace_id, number_id, contact_id)
        conversation = await repository.by_number_and_contact(session, number_id, contact_id, lock=True)
        assert conversation is not None
    return conversation


def note_message(
    conversation: Conversation, at: datetime, preview: str, *, inbound: bool, opens_window: bool
) -> None:
    """Keep activity, unread count and the window end up to date for a newly stored message.

    Messages can be processed out of order, so every field only ever moves to a later time.
    """
    if conversation.last_message_at is None or at >= conversation.last_message_at:
        conversation.last_message_at = at
        conversation.last_message_preview = preview[:200]
    if inbound:
        conversation.unread_count = (conversation.unread_count or 0) + 1
        if conversation.status == "closed":
            conversation.status = "open"
    if opens_window and (conversation.last_inbound_at is None or at > conversation.last_inbound_at):
        conversation.last_inbound_at = at
        conversation.window_expires_at = at + SERVICE_WINDOW


async def get_conversation(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    """The workspace's conversation; 404 for a missing one or another workspace's."""
    conversation = await repository.in_workspace(session, workspace_id, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    return conversation


def window_open(conversation: Conversation, now: datetime) -> bool:
    """True while free-form messages may be sent: within 24 hours of the customer's last message."""
    return conversation.window_expires_at is not None and conversation.window_expires_at > now
