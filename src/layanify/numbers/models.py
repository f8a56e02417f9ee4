"""Connected WhatsApp business numbers (the seed's WhatsAppNumber) and their WABA's templates."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime


class NumberStatus(enum.StrEnum):
    """The seed's approval status of a number."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class WhatsAppNumber(TimestampMixin, Base):
    """A business phone number connected through the Cloud API."""

    __tablename__ = "whatsapp_numbers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The seed's userId: who connected the number.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Meta's phone number id is globally unique and is what webhooks are routed by.
    phone_number_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    waba_id: Mapped[str | None] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    status: Mapped[NumberStatus] = mapped_column(
        Enum(NumberStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        nullable=False,
        default=NumberStatus.PENDING,
    )
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_last4: Mapped[str | None] = mapped_column(String(4))
    quality_rating: Mapped[str | None] = mapped_column(String(16))
    messaging_limit: Mapped[str | None] = mapped_column(String(64))
    account_status: Mapped[str | None] = mapped_column(String(64))
    last_quality_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_account_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the last connection check (or send) found: unknown, connected, disconnected or error.
    connection_state: Mapped[str] = mapped_column(String(16), nullable=False, default="unknown")
    connection_error: Mapped[str | None] = mapped_column(Text)
    connection_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_name: Mapped[str | None] = mapped_column(String(200))
    throughput_level: Mapped[str | None] = mapped_column(String(32))
    # Messages per second this number may send; null means the installation's default (Meta's 80).
    rate_limit_per_second: Mapped[int | None] = mapped_column(Integer)
    # Removed by its workspace: hidden and never sent from, its history kept.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MessageTemplate(TimestampMixin, Base):
    """A message template of a WABA as its status/quality webhooks describe it."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "waba_id", "template_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    waba_id: Mapped[str] = mapped_column(String(64), nullable=False)
    template_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(512), nullable=False, default="")
    language: Mapped[str] = mapped_column(String(16), nullable=False, default="")
    status: Mapped[str | None] = mapped_column(String(32))
    # MARKETING, UTILITY or AUTHENTICATION, as the template webhooks report it (null until one does).
    category: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    quality_score: Mapped[str | None] = mapped_column(String(32))
    last_event: Mapped[dict[str, Any] | None] = mapped_column(JSON)
