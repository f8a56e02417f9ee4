"""Queries for media files; flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.conversations.models import Conversation
from layanify.crypto import sealing
from layanify.db.sql import insert_ignoring_conflicts, is_postgresql
from layanify.media.models import MEDIA_TYPES_SQL, MediaFile, MediaStatus
from layanify.messaging.models import Direction, Message

# Meta keeps a received media id downloadable for about 7 days; after that a download cannot succeed.
MEDIA_ID_LIFETIME = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ClaimedMedia:
    """A pending media file a downloader now owns until its lease runs out."""

    id: int
    workspace_id: int
    message_id: int | None
    number_id: int | None
    meta_media_id: str | None
    mime_type: str | None
    sha256: str | None
    attempts: int
    created_at: datetime
    # The workspace encrypts its content: the file is stored encrypted.
    seal: bool = False


def _inbound_media() -> list[Any]:
    """The predicate of `ix_messages_inbound_media` as literals: a generic PostgreSQL plan (bound
    parameters) could not prove it implies the partial index's predicate, and would not use it."""
    return [text(f"messages.direction = 'inbound' AND messages.type IN ({MEDIA_TYPES_SQL})")]


def _str(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


async def unfiled_media_messages(
    session: AsyncSession, *, after_id: int, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Media file rows for inbound media messages (id > after_id) that have none yet, oldest first.

    A message whose media id is missing or older than Meta keeps it gets a row that is `failed` at once.
    """
    has_file = exists().where(MediaFile.message_id == Message.id)
    stmt = (
        select(
            Message.id,
            Message.workspace_id,
            Message.type,
            Message.content,
            Message.timestamp,
            Conversation.number_id,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*_inbound_media(), Message.id > after_id, ~has_file)
        .order_by(Message.id)
        .limit(limit)
    )
    values = []
    rows = (await session.execute(stmt)).all()
    for message_id, workspace_id, message_type, content, timestamp, number_id in rows:
        media = content.get("media") if isinstance(content, dict) else None
        media = media if isinstance(media, dict) else {}
        meta_media_id = _str(media.get("id"), 128)
        problem = None
        if meta_media_id is None:
            problem = "The webhook carried no media id, so there is nothing to download."
        elif timestamp < now - MEDIA_ID_LIFETIME:
            problem = "The media is older than the 7 days Meta keeps it; it can no longer be downloaded."
        values.append(
            {
                "workspace_id": workspace_id,
                "message_id": message_id,
                "number_id": number_id,
                "direction": Direction.INBOUND.value,
                "media_type": message_type,
                "meta_media_id": meta_media_id,
                "mime_type": _str(media.get("mime_type"), 255),
                "sha256": _str(media.get("sha256"), 128),
                "filename": _str(media.get("filename"), 255),
                "status": MediaStatus.FAILED.value if problem else MediaStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": None if problem else now,
                "last_error": problem,
                "created_at": now,
                "updated_at": now,
            }
        )
    return values


async def insert_files(session: AsyncSession, values: list[dict[str, Any]]) -> None:
    """Insert media file rows; a message that already has one is skipped (its unique message_id)."""
    if values:
        await sealing.seal_filename_rows(session, values)
        await session.execute(insert_ignoring_conflicts(session, MediaFile), values)


async def settled_watermark(session: AsyncSession, *, after_id: int, created_before: datetime) -> int:
    """The highest inbound media message id (> after_id) created before `created_before`, else after_id."""
    stmt = select(func.max(Message.id)).where(
        *_inbound_media(), Message.id > after_id, Message.created_at < created_before
    )
    highest = (await session.execute(stmt)).scalar_one_or_none()
    return max(after_id, highest or 0)


async def claim_due(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedMedia]:
    """Claim pending files that are due: one more attempt, and not due again until the lease ends."""
    stmt = (
        select(MediaFile)
        .where(text("media_files.status = 'pending'"), MediaFile.next_attempt_at <= now)
        .order_by(MediaFile.next_attempt_at, MediaFile.id)
        .limit(limit)
    )
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    files = list((await session.execute(stmt)).scalars())
    sealed = await sealing.encrypting(session, {file.workspace_id for file in files})
    claimed = []
    for file in files:
        file.attempts += 1
        file.next_attempt_at = lease_until
        claimed.append(
            ClaimedMedia(
                id=file.id,
                workspace_id=file.workspace_id,
                message_id=file.message_id,
                number_id=file.number_id,
                meta_media_id=file.meta_media_id,
                mime_type=file.mime_type,
                sha256=file.sha256,
                attempts=file.attempts,
                created_at=file.created_at,
                seal=file.workspace_id in sealed,
            )
        )
    await session.flush()
    return claimed


async def record_stored(
    session: AsyncSession,
    media_id: int,
    *,
    storage_key: str,
    file_size: int,
    mime_type: str | None,
    media_url: str,
) -> None:
    """Mark a file stored and point its message's `content.media_url` at our copy."""
    file = await session.get(MediaFile, media_id)
    if file is None or file.status != MediaStatus.PENDING.value:
        return
    file.status = MediaStatus.STORED.value
    file.storage_key = storage_key
    file.file_size = file_size
    file.mime_type = mime_type or file.mime_type
    file.next_attempt_at = None
    file.last_error = None
    if file.message_id is not None:
        message = await session.get(Message, file.message_id)
        if message is not None:
            # A new dict: SQLAlchemy does not see changes made inside a JSON value.
            message.content = {**message.content, "media_url": media_url}
    await session.flush()


async def record_retry(session: AsyncSession, media_id: int, *, at: datetime, error: str) -> None:
    """Leave a file pending, due again at `at`, with why the attempt failed."""
    await session.execute(
        update(MediaFile)
        .where(MediaFile.id == media_id, MediaFile.status == MediaStatus.PENDING.value)
        .values(next_attempt_at=at, last_error=error[:2000])
    )


async def record_failed(session: AsyncSession, media_id: int, *, error: str) -> None:
    """Give up on a file for good, with the reason."""
    await session.execute(
        update(MediaFile)
        .where(MediaFile.id == media_id, MediaFile.status == MediaStatus.PENDING.value)
        .values(status=MediaStatus.FAILED.value, next_attempt_at=None, last_error=error[:2000])
    )


async def in_workspace(session: AsyncSession, workspace_id: int, media_id: int) -> MediaFile | None:
    """The media file, only when it belongs to the workspace."""
    stmt = select(MediaFile).where(MediaFile.id == media_id, MediaFile.workspace_id == workspace_id)
    return (await session.execute(stmt)).scalar_one_or_none()


def add(session: AsyncSession, file: MediaFile) -> None:
    """Add a new media file to the unit of work."""
    session.add(file)
