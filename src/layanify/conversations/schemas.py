"""API shapes for conversations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from layanify.contacts.schemas import ContactRead


class ConversationRead(BaseModel):
    """A conversation with its contact, activity and 24-hour window."""

    id: int
    number_id: int
    contact: ContactRead
    status: str
    last_message_at: datetime | None
    last_message_preview: str
    last_inbound_at: datetime | None
    window_expires_at: datetime | None
    window_open: bool
    unread_count: int
    # False when an agent switched the number's auto-replies off for this conversation.
    auto_reply_enabled: bool
    created_at: datetime
