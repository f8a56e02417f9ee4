"""Per-number behaviour settings and the memory of which auto-replies went to whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime


class NumberSettings(TimestampMixin, Base):
    """A number's behaviour (`automation.schemas.BehaviourSettings` as JSON); absent means the defaults."""

    __tablename__ = "number_settings"

    number_id: Mapped[int] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class AutoReplySent(Base):
    """When a rule last answered a contact on a number: the cooldown reads it, so nobody is spammed."""

    __tablename__ = "auto_replies_sent"
    __table_args__ = (UniqueConstraint("number_id", "contact_id", "rule"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    number_id: Mapped[int] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), nullable=False
    )
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False)
    # "greeting", "away" or "keyword:<rule id>".
    rule: Mapped[str] = mapped_column(String(80), nullable=False)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
