"""API shapes for media files."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class MediaRead(BaseModel):
    """A media file: our copy of a received file, or an upload ready to be sent."""

    id: int
    direction: str = Field(description="inbound (received in a message) or outbound (uploaded)")
    type: str | None = Field(description="the WhatsApp message type: image, video, audio, document, sticker")
    message_id: int | None
    number_id: int | None
    meta_media_id: str | None = Field(description="Meta's media id (send uploads with it; valid ~30 days)")
    mime_type: str | None
    file_size: int | None
    filename: str | None
    status: str = Field(description="pending (downloading), stored, or failed (see `error`)")
    error: str | None
    content_url: str | None = Field(description="where the file is served, once stored")
    created_at: datetime


class MediaUploaded(BaseModel):
    """An uploaded file; send it with `{"type": <type>, "media_id": <meta_media_id>}`."""

    id: int
    meta_media_id: str
    mime_type: str
    file_size: int
    filename: str | None
    type: str
