"""Threads between one number and one contact, with their 24-hour service window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column

from layanify.crypto.content import EncryptedText
from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime


class Conversation(TimestampMixin, Base):
    """The thread between one number and one contact."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("number_id", "contact_id"),
        # One index per inbox filter, so every page is a keyset range scan of (last_message_at, id).
        Index("ix_conversations_workspace_activity", "workspace_id", "last_message_at", "id"),
        Index(
            "ix_conversations_workspace_status_activity", "workspace_id", "status", "last_message_at", "id"
        ),
        Index(
            "ix_conversations_workspace_assignee_activity",
            "workspace_id",
            "assigned_user_id",
            "last_message_at",
            "id",
            postgresql_where=text("assigned_user_id IS NOT NULL"),
            sqlite_where=text("assigned_user_id IS NOT NULL"),
        ),
        # PostgreSQL takes `assigned_user_id IS NULL` for no equality, so the index above would not give
        # the order and "unassigned" would sort every match; this one holds the unassigned only.
        Index(
            "ix_conversations_workspace_unassigned_activity",
            "workspace_id",
            "last_message_at",
            "id",
            postgresql_where=text("assigned_user_id IS NULL"),
            sqlite_where=text("assigned_user_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    number_id: Mapped[int] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    # The agent answering it; null when unassigned (or when that user was deleted).
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # At most 200 characters of text; encrypted at rest like the message content (hence no length here).
    last_message_preview: Mapped[str] = mapped_column(EncryptedText, nullable=False, default="")
    unread_count: Mapped[int] = mapped_column(nullable=False, default=0)
    # Agents can switch the number's auto-replies off for one conversation.
    auto_reply_enabled: Mapped[bool] = mapped_column(nullable=False, default=True, server_default=true())
