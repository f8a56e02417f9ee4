"""API shapes of the privacy domain: the retention policy."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

# A hundred years: anything longer is "forever" (null).
MAX_DAYS = 36500

Days = int | None


class RetentionUpdate(BaseModel):
    """How many days to keep each kind of data; null (or left out) keeps it forever."""

    model_config = ConfigDict(extra="forbid")

    messages_days: Days = Field(default=None, ge=1, le=MAX_DAYS, description="messages and their statuses")
    media_days: Days = Field(default=None, ge=1, le=MAX_DAYS, description="stored media files")
    webhook_events_days: Days = Field(
        default=None, ge=1, le=MAX_DAYS, description="raw webhook events as Meta sent them"
    )


class RetentionRead(BaseModel):
    """A workspace's retention policy and what the last purge deleted."""

    messages_days: Days = None
    media_days: Days = None
    webhook_events_days: Days = None
    last_purge_at: datetime | None = Field(default=None, description="when the purge last ran")
    last_purge_counts: dict[str, int] | None = Field(
        default=None, description="what it deleted: messages, media and webhook_events"
    )
