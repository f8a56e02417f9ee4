"""Media operations: reading a workspace's files and uploading outbound media through a number."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from pathlib import PurePath

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.crypto import sealing
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.errors import Conflict, LayanifyError, NotFound
from layanify.media import repository
from layanify.media.formats import FileTooLarge, UnsupportedMedia, check_upload
from layanify.media.models import MediaFile, MediaStatus
from layanify.media.schemas import MediaRead, MediaUploaded
from layanify.media.storage import Storage
from layanify.messaging.models import Direction
from layanify.numbers import service as numbers
from layanify.observability import get_logger
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.errors import Action, GraphError

log = get_logger(__name__)
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class MediaTooLargeError(LayanifyError):
    """The upload is larger than WhatsApp accepts for its type."""

    status_code = 413
    code = "media_too_large"


class UnsupportedMediaError(LayanifyError):
    """The upload is not a type WhatsApp accepts."""

    status_code = 415
    code = "unsupported_media_type"


def content_url(media_id: int) -> str:
    """Where our copy of a media file is served (what a message's `content.media_url` holds)."""
    return f"/api/v1/media/{media_id}/content"


def storage_key(workspace_id: int, created_at: datetime, name: str, extension: str) -> str:
    """`<workspace_id>/<yyyy>/<mm>/<name><extension>`: a workspace's files together, by month."""
    return f"{workspace_id}/{created_at:%Y}/{created_at:%m}/{name}{extension}"


def clean_filename(filename: str | None) -> str | None:
    """The caller's filename without any directory or control characters, at most 255 characters."""
    if not filename:
        return None
    name = _UNSAFE_FILENAME.sub("", PurePath(filename.replace("\\", "/")).name).strip()
    return name[:255] or None


async def get_media(session: AsyncSession, workspace_id: int, media_id: int) -> MediaFile:
    """The workspace's media file; 404 for a missing or another workspace's one."""
    file = await repository.in_workspace(session, workspace_id, media_id)
    if file is None:
        raise NotFound("media not found")
    return file


def to_read(file: MediaFile) -> MediaRead:
    """The API shape of a media file."""
    return MediaRead(
        id=file.id,
        direction=file.direction,
        type=file.media_type,
        message_id=file.message_id,
        number_id=file.number_id,
        meta_media_id=file.meta_media_id,
        mime_type=file.mime_type,
        file_size=file.file_size,
        filename=file.filename,
        status=file.status,
        error=file.last_error,
        content_url=content_url(file.id) if file.status == MediaStatus.STORED.value else None,
        created_at=file.created_at,
    )


async def upload(
    session: AsyncSession,
    *,
    workspace_id: int,
    number_id: int,
    filename: str | None,
    mime_type: str,
    content: bytes,
    storage: Storage,
    client: GraphClient,
    keyring: Keyring,
) -> MediaUploaded:
    """Check the file against WhatsApp's limits, keep a copy, upload it to Meta through the number.

    Nothing is written to the database until Meta has answered (no write transaction is held open
    across the upload); a file kept for an upload that then fails is removed again.
    """
    number = await numbers.get_number(session, workspace_id, number_id)
    try:
        token = numbers.access_token(number, keyring)
    except KeyringError:
        token = None
    if token is None:
        raise Conflict("the number has no usable access token; add it again in the number's settings")
    try:
        found = check_upload(mime_type, content)
    except FileTooLarge as problem:
        raise MediaTooLargeError(str(problem)) from None
    except UnsupportedMedia as problem:
        raise UnsupportedMediaError(str(problem)) from None
    name = clean_filename(filename) or f"upload{found.extension}"
    now = utcnow()
    key = storage_key(workspace_id, now, f"up-{uuid.uuid4().hex}", found.extension)
    seal = bool(await sealing.encrypting(session, {workspace_id}))
    await storage.write(key, content, seal=seal)
    try:
        # Audio keeps its parameters (`audio/ogg; codecs=opus`): Meta accepts OGG with OPUS only.
        sent_type = mime_type.strip() if found.kind == "audio" else found.mime_type
        meta_media_id = await client.upload_media(
            number.phone_number_id, token, content=content, mime_type=sent_type, filename=name
        )
        file = MediaFile(
            workspace_id=workspace_id,
            number_id=number.id,
            direction=Direction.OUTBOUND.value,
            media_type=found.kind,
            meta_media_id=meta_media_id,
            mime_type=found.mime_type,
            sha256=hashlib.sha256(content).hexdigest(),
            file_size=len(content),
            filename=name,
            storage_key=key,
            status=MediaStatus.STORED.value,
            attempts=1,
        )
        repository.add(session, file)
        await session.flush()
    except GraphError as error:
        await storage.delete(key)
        log.info("media_upload_refused", number_id=number.id, code=error.code, action=error.action.value)
        status = 503 if error.retryable else 409 if error.action is Action.RECONNECT else 422
        raise LayanifyError(
            f"WhatsApp did not accept the upload: {error}",
            status_code=status,
            code="upload_failed",
            details=[error.to_dict()],
        ) from None
    except BaseException:
        await storage.delete(key)
        raise
    return MediaUploaded(
        id=file.id,
        meta_media_id=meta_media_id,
        mime_type=found.mime_type,
        file_size=len(content),
        filename=name,
        type=found.kind,
    )
