"""A workspace's retention policy and what its last purge removed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from layanify.db.base import Base, TimestampMixin, UTCDateTime
from layanify.messaging.models import Message

# The kinds of data a policy keeps for a number of days, in the order the settings page shows them.
KINDS = ("messages", "media", "webhook_events")


class RetentionPolicy(TimestampMixin, Base):
    """How many days a workspace keeps messages, media files and raw webhook events (null: forever).

    No row means the defaults: everything is kept forever, so nothing is deleted unless an owner chooses.
    """

    __tablename__ = "retention_policies"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    messages_days: Mapped[int | None] = mapped_column(Integer)
    media_days: Mapped[int | None] = mapped_column(Integer)
    webhook_events_days: Mapped[int | None] = mapped_column(Integer)
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The last purge that ran for this workspace and how many of each kind it deleted.
    last_purge_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_purge_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)

    def days(self, kind: str) -> int | None:
        """The days `kind` ("messages", "media" or "webhook_events") is kept; None for forever."""
        value: int | None = getattr(self, f"{kind}_days")
        return value


# The purge finds a workspace's oldest messages by Meta's time: a range scan of this index, so it stays
# cheap however many newer messages the workspace has. It lives here because only retention uses it.
Index(
    "ix_messages_workspace_timestamp",
    Message.__table__.c.workspace_id,
    Message.__table__.c.timestamp,
    Message.__table__.c.id,
)
