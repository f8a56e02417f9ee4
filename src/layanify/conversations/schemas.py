"""API shapes for conversations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from layanify.contacts.schemas import ContactRead
from layanify.pagination import MAX_ID

if TYPE_CHECKING:
    from layanify.accounts.models import User
    from layanify.contacts.models import Contact
    from layanify.conversations.models import Conversation


class ConversationRead(BaseModel):
    """A conversation with its contact, activity, assignee and 24-hour window."""

    id: int
    number_id: int
    contact: ContactRead
    status: str
    closed_at: datetime | None
    assigned_user_id: int | None
    # The assignee's name, or their email when they have none.
    assigned_user_name: str | None
    last_message_at: datetime | None
    last_message_preview: str
    last_inbound_at: datetime | None
    window_expires_at: datetime | None
    window_open: bool
    unread_count: int
    # False when an agent switched the number's auto-replies off for this conversation.
    auto_reply_enabled: bool
    created_at: datetime

    @classmethod
    def of(
        cls, conversation: Conversation, contact: Contact, assignee: User | None, *, now: datetime
    ) -> ConversationRead:
        """The view of a conversation, its contact and its assignee (if any) at `now`."""
        expires = conversation.window_expires_at
        return cls(
            id=conversation.id,
            number_id=conversation.number_id,
            contact=ContactRead.model_validate(contact),
            status=conversation.status,
            closed_at=conversation.closed_at,
            assigned_user_id=conversation.assigned_user_id,
            assigned_user_name=(assignee.name or assignee.email) if assignee is not None else None,
            last_message_at=conversation.last_message_at,
            last_message_preview=conversation.last_message_preview,
            last_inbound_at=conversation.last_inbound_at,
            window_expires_at=expires,
            window_open=expires is not None and expires > now,
            unread_count=conversation.unread_count,
            auto_reply_enabled=conversation.auto_reply_enabled,
            created_at=conversation.created_at,
        )


class ConversationUpdate(BaseModel):
    """What an agent changes on a conversation; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    # A member of the workspace, or null to unassign.
    assigned_user_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    status: Literal["open", "closed"] | None = None
    auto_reply_enabled: bool | None = None

    @model_validator(mode="after")
    def _something_and_no_nulls(self) -> ConversationUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give assigned_user_id, status or auto_reply_enabled")
        for name in ("status", "auto_reply_enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self
