"""Privacy API: export and erase a contact (owners), and the workspace's retention policy."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from fastapi import APIRouter, Request, status
from fastapi.responses import Response, StreamingResponse

from layanify.accounts.dependencies import CurrentPrincipal, OwnerPrincipal, SessionDep
from layanify.errors import Unprocessable
from layanify.media.routes import media_storage
from layanify.pagination import ObjectId
from layanify.privacy import service
from layanify.privacy.schemas import RetentionRead, RetentionUpdate

router = APIRouter(prefix="/api/v1", tags=["privacy"])

# An export is built in memory up to this size, on disk beyond it.
SPOOL_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 256 * 1024


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


@router.get(
    "/contacts/{contact_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the archive"}},
)
async def export_contact(
    request: Request, contact_id: ObjectId, principal: OwnerPrincipal, session: SessionDep
) -> StreamingResponse:
    """Everything held about the contact, as a zip download (owners): `contact.json` — the contact,
    its conversations, every message with its status history, the files' facts and the raw webhook
    events about it — and `media/<id>-<filename>` for each stored file. Recorded in the audit log."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by _chunks
    try:
        await service.export_contact(
            session,
            workspace_id=principal.workspace_id,
            contact_id=contact_id,
            actor_user_id=principal.user_id,
            storage=media_storage(request),
            target=spool,
        )
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        _chunks(spool),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="contact-{contact_id}-export.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def erase_contact(
    request: Request,
    contact_id: ObjectId,
    principal: OwnerPrincipal,
    session: SessionDep,
    confirm: bool = False,
) -> Response:
    """Erase the contact and everything about it (owners; cannot be undone, so `?confirm=true` is
    required): messages, status history, media files, conversations and the raw webhook events that
    name it. The audit log keeps that it happened, with counts only."""
    if not confirm:
        raise Unprocessable(
            "erasing a contact cannot be undone: repeat the request with ?confirm=true",
            code="confirm_required",
        )
    await service.erase_contact(
        session,
        workspace_id=principal.workspace_id,
        contact_id=contact_id,
        actor_user_id=principal.user_id,
        storage=media_storage(request),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/retention")
async def get_retention(principal: CurrentPrincipal, session: SessionDep) -> RetentionRead:
    """How many days the workspace keeps messages, media files and raw webhook events (null: forever),
    and what the last purge deleted."""
    return await service.get_retention(session, principal.workspace_id)


@router.put("/retention")
async def save_retention(
    data: RetentionUpdate, principal: OwnerPrincipal, session: SessionDep
) -> RetentionRead:
    """Set the retention policy (owners). Each value is 1 to 36500 days, or null to keep forever; the
    hourly purge applies it."""
    return await service.save_retention(session, principal.workspace_id, data, user_id=principal.user_id)
