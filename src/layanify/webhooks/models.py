"""Raw webhook events exactly as received, with their processing state."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from layanify.crypto.content import SealedBody
from layanify.db.base import Base, BigId, UTCDateTime


class EventStatus(enum.StrEnum):
    """Processing state of a stored webhook event."""

    PENDING = "pending"  # waiting for a worker (or for its next retry)
    PROCESSED = "processed"
    FAILED = "failed"  # gave up after the last attempt; replay to try again


class WebhookEvent(Base):
    """One webhook POST as received (raw bytes), committed before Meta gets its 200."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # Workers claim pending events oldest first: a partial index keeps that a short range scan however
        # many processed events the table holds (the claim query repeats this predicate literally).
        Index(
            "ix_webhook_events_pending",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_events_workspace", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    # Sealed with the keyring as it is stored (crypto/content.py), opened when read.
    body: Mapped[bytes] = mapped_column(SealedBody, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # Filled by processing: which workspace it concerned, what it carried, what came of it.
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    fields: Mapped[str | None] = mapped_column(String(256))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ReceiptHandover(Base):
    """SQLite: the highest receipts-file id moved into `webhook_events` (one row; decision 35).

    Moved in the same transaction as the receipts, so a receipt the receipts file had not yet deleted
    when the process stopped is never moved twice, even if its event was purged or erased meanwhile.
    """

    __tablename__ = "webhook_receipt_handover"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    moved_through: Mapped[int] = mapped_column(BigInteger, nullable=False)
