"""API shapes for messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class MessageContent(BaseModel):
    """What a message carries: `type` plus the fields of that type (the seed's content, extended)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    caption: str | None = None
    media_url: str | None = Field(
        default=None, description="where our copy of the media is served, once downloaded"
    )
    media: dict[str, Any] | None = None
    template_name: str | None = None
    template_params: list[str] | None = None


class MessageError(BaseModel):
    """Why a message failed, as Meta reported it."""

    code: int | None
    title: str | None
    details: str | None
    href: str | None


class StatusTimes(BaseModel):
    """When Meta reported each status (null until reported)."""

    sent: datetime | None
    delivered: datetime | None
    read: datetime | None
    played: datetime | None
    failed: datetime | None


class StatusHistoryItem(BaseModel):
    """One status report as received."""

    status: str
    timestamp: datetime
    received_at: datetime


class MessageRead(BaseModel):
    """A message as the API shows it."""

    id: int
    conversation_id: int
    wamid: str | None
    direction: str
    content: MessageContent
    status: str
    timestamp: datetime
    is_automated: bool
    reply_to_wamid: str | None
    status_times: StatusTimes
    error: MessageError | None
    status_history: list[StatusHistoryItem] | None = None
