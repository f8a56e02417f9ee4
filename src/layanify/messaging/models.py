"""Messages (the seed's Message) and the history of their statuses."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from layanify.crypto.content import EncryptedJSON
from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime


class Direction(enum.StrEnum):
    """Who wrote the message."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(enum.StrEnum):
    """Where a message is in its life (architecture.md: the message status machine)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"
    RECEIVED = "received"
    # An automated reply that was never sent: an agent answered before its delay ran out.
    CANCELLED = "cancelled"


# A status only moves forward by rank. `failed` outranks everything before `read`.
STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "failed": 4,
    "cancelled": 4,
    "received": 4,
    "read": 5,
    "played": 6,
}


class Message(TimestampMixin, Base):
    """One WhatsApp message in a conversation, inbound or outbound."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_timestamp", "conversation_id", "timestamp", "id"),
        # The outbox: only queued and sending messages are in this index, so claiming stays cheap.
        Index(
            "ix_messages_outbox",
            "next_attempt_at",
            "id",
            postgresql_where=text("status IN ('queued', 'sending')"),
            sqlite_where=text("status IN ('queued', 'sending')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    # Meta's id; unique, so a redelivered webhook never stores a message twice. Null until sent.
    wamid: Mapped[str | None] = mapped_column(String(256), unique=True)
    direction: Mapped[Direction] = mapped_column(String(16), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    # Encrypted at rest when the workspace chooses it (crypto/sealing.py); always read back in the clear.
    content: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, nullable=False)
    # The blind index of an encrypted message's words (crypto/content.py `search_tokens`); else null.
    search_tokens: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    is_automated: Mapped[bool] = mapped_column(nullable=False, default=False)
    reply_to_wamid: Mapped[str | None] = mapped_column(String(256))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(String(512))
    error_details: Mapped[str | None] = mapped_column(Text)
    error_href: Mapped[str | None] = mapped_column(String(512))
    # What the user should do about the error (an `Action` of layanify.whatsapp.errors).
    error_action: Mapped[str | None] = mapped_column(String(32))
    # Outbound only: the sending number, the recipient, and the outbox's bookkeeping.
    number_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"))
    recipient: Mapped[str | None] = mapped_column(String(32))
    sent_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A worker that claimed the message owns it until then; a crashed worker's claim expires.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MessageStatusEvent(Base):
    """Every status Meta reported for a wamid, kept even when it arrives late or before its message."""

    __tablename__ = "message_status_events"
    __table_args__ = (UniqueConstraint("number_id", "wamid", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Null while the wamid matches no message yet (kept for later matching).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    # The number that reported it: a (wamid, status) is unique per number, so no number can shadow another's.
    number_id: Mapped[int] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), nullable=False
    )
    wamid: Mapped[str] = mapped_column(String(256), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    recipient_id: Mapped[str | None] = mapped_column(String(32))
    biz_opaque_callback_data: Mapped[str | None] = mapped_column(String(512))
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    pricing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    conversation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class ChatActionKind(enum.StrEnum):
    """A Cloud API call about an inbound message that is not a message itself."""

    READ = "read"  # mark as read (Meta marks the earlier messages of the chat too)
    TYPING = "typing"  # mark as read and show the typing indicator (up to 25 s, or until we reply)


class ChatAction(TimestampMixin, Base):
    """A scheduled mark-as-read or typing-indicator call, sent by a worker like the outbox sends messages.

    At most one `read` is pending per conversation: a newer inbound message moves its target forward
    instead of adding a second call, so a burst of messages costs one call.
    """

    __tablename__ = "chat_actions"
    __table_args__ = (
        Index(
            "ix_chat_actions_due",
            "due_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_chat_actions_conversation", "conversation_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    number_id: Mapped[int] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), nullable=False
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # The inbound message the call names (Meta's wamid) and ours.
    wamid: Mapped[str] = mapped_column(String(256), nullable=False)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    # The automated reply a typing indicator announces; cancelled with it.
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    # pending, done, failed or cancelled.
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
