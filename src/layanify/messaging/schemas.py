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
    """Why a message failed (or why its last attempt did, while it waits to be retried)."""

    code: int | None
    title: str | None
    details: str | None
    href: str | None
    action: str | None = Field(
        default=None,
        description="what to do: retry_later, send_template, reconnect, fix_request, undeliverable, "
        "not_allowed, register_number",
    )
    remedy: str | None = Field(default=None, description="the action in words for the user")


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
    number_id: int | None = None
    recipient: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    status_times: StatusTimes
    error: MessageError | None
    status_history: list[StatusHistoryItem] | None = None


class SendMessage(BaseModel):
    """Send a message from a number to a phone number (or, in a conversation, to its contact)."""

    model_config = ConfigDict(extra="forbid")

    number_id: int | None = Field(default=None, ge=1, lt=2**63)
    to: str | None = Field(default=None, max_length=64, examples=["+6281234567890"])
    content: dict[str, Any] = Field(
        examples=[{"type": "text", "text": "Halo! Pesanan Anda sudah dikirim."}],
        description="`type` plus that type's fields: text, image/video/audio/document/sticker, location, "
        "contacts, interactive, reaction, template (see docs/api.md)",
    )
    reply_to: int | str | None = Field(default=None, description="our message id, or a wamid, to quote")


class SendInConversation(BaseModel):
    """Send a message to a conversation's contact from the conversation's number."""

    model_config = ConfigDict(extra="forbid")

    content: dict[str, Any]
    reply_to: int | str | None = None
