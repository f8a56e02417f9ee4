"""Media files: our copy of a message's image, video, audio, document or sticker, and uploads."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from layanify.crypto.content import EncryptedText
from layanify.db.base import Base, BigId, TimestampMixin, UTCDateTime
from layanify.messaging.models import Message

MEDIA_MESSAGE_TYPES = ("image", "video", "audio", "document", "sticker")
MEDIA_TYPES_SQL = ", ".join(f"'{kind}'" for kind in MEDIA_MESSAGE_TYPES)
# Partial index predicates; queries spell them as literals too, so PostgreSQL can use the indexes.
INBOUND_MEDIA_PREDICATE = f"direction = 'inbound' AND type IN ({MEDIA_TYPES_SQL})"
PENDING_PREDICATE = "status = 'pending'"


class MediaStatus(enum.StrEnum):
    """Where our copy of a file is."""

    PENDING = "pending"
    STORED = "stored"
    FAILED = "failed"


class MediaFile(TimestampMixin, Base):
    """A file in our storage: inbound (downloaded for a message) or outbound (uploaded by a user)."""

    __tablename__ = "media_files"
    __table_args__ = (
        # The downloader's queue: only pending rows are in this index, so claiming stays cheap.
        Index(
            "ix_media_files_pending",
            "next_attempt_at",
            "id",
            postgresql_where=text(PENDING_PREDICATE),
            sqlite_where=text(PENDING_PREDICATE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # One file per message: the unique key also stops two downloaders from enqueueing a message twice.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    number_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_numbers.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(16), nullable=False)
    # The WhatsApp message type the file is (or is sent as): image, video, audio, document or sticker.
    media_type: Mapped[str | None] = mapped_column(String(16))
    meta_media_id: Mapped[str | None] = mapped_column(String(128))
    mime_type: Mapped[str | None] = mapped_column(String(255))
    # The SHA-256 Meta gave (base64 in webhooks, hex from the media endpoint); hex of ours for uploads.
    sha256: Mapped[str | None] = mapped_column(String(128))
    file_size: Mapped[int | None] = mapped_column(Integer)
    # At most 255 characters; encrypted at rest like the message content (crypto/sealing.py).
    filename: Mapped[str | None] = mapped_column(EncryptedText)
    # Where the bytes are, relative to the storage root: `<workspace_id>/<yyyy>/<mm>/<name>.<ext>`.
    storage_key: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


# The downloader finds inbound media messages that have no media file yet by scanning this index from a
# watermark (media/repository.py). It lives here, not in messaging/models.py, because only media uses it.
Index(
    "ix_messages_inbound_media",
    Message.__table__.c.id,
    postgresql_where=text(INBOUND_MEDIA_PREDICATE),
    sqlite_where=text(INBOUND_MEDIA_PREDICATE),
)
