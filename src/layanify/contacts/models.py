"""Customers, keyed by wa_id per workspace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime


class Contact(TimestampMixin, Base):
    """A customer who wrote to (or was written by) one of the workspace's numbers."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("workspace_id", "wa_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False)
    wa_id: Mapped[str] = mapped_column(String(32), nullable=False)
    # Business-scoped user id from newer payloads, when Meta sends one.
    user_id: Mapped[str | None] = mapped_column(String(128))
    profile_name: Mapped[str] = mapped_column(String(256), nullable=False, default="")
    # Meta's time of the message the profile was last taken from: older redeliveries never overwrite it.
    profile_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    marketing_opt_out: Mapped[bool] = mapped_column(nullable=False, default=False)
    marketing_preference_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What agents know about the customer; `display_name` is shown instead of the WhatsApp profile name.
    display_name: Mapped[str | None] = mapped_column(String(256))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list, server_default="[]")

    @property
    def name(self) -> str:
        """The name agents see: their own override, else the WhatsApp profile name."""
        return self.display_name or self.profile_name
