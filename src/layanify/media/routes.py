"""Media API: a workspace's files (metadata and content) and uploads of outbound media."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.crypto.keyring import KeyringError
from layanify.errors import Conflict, LayanifyError, NotFound, Unprocessable
from layanify.media import service
from layanify.media.formats import MAX_UPLOAD_BYTES, base_type, is_inline
from layanify.media.models import MediaStatus
from layanify.media.schemas import MediaRead, MediaUploaded
from layanify.media.storage import LocalStorage, Storage, StorageError
from layanify.pagination import MAX_ID, ObjectId

router = APIRouter(prefix="/api/v1/media", tags=["media"])

# Room for the multipart framing and the other form fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024
# Shown in place by a browser; any other type (SVG and HTML included) is served as a download.
_SAFE_INLINE = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Even a file a browser renders cannot run scripts or load anything in our origin.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "number_id"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "number_id": {"type": "integer", "description": "the number that will send it"},
                    },
                }
            }
        },
    }
}


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID


def media_storage(request: Request) -> Storage:
    """The app's media storage (the local directory `LAYANIFY_MEDIA_DIR` unless one was installed)."""
    storage: Storage | None = getattr(request.app.state, "media_storage", None)
    if storage is None:
        storage = request.app.state.media_storage = LocalStorage(request.app.state.settings.media_dir)
    return storage


@router.get("/{media_id}")
async def get_media(media_id: ObjectId, principal: CurrentPrincipal, session: SessionDep) -> MediaRead:
    """A media file's facts: type, size, status (pending, stored, failed with the reason), content URL."""
    return service.to_read(await service.get_media(session, principal.workspace_id, media_id))


@router.get(
    "/{media_id}/content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"}},
)
async def get_media_content(
    request: Request, media_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """The file itself, with its mime type; images, audio and video inline, anything else as a download."""
    file = await service.get_media(session, principal.workspace_id, media_id)
    if file.status != MediaStatus.STORED.value or file.storage_key is None:
        if file.status == MediaStatus.FAILED.value:
            raise LayanifyError(
                f"the file could not be downloaded: {file.last_error}", status_code=410, code="media_failed"
            )
        raise Conflict("the file is still being downloaded; try again shortly", code="media_pending")
    mime_type = base_type(file.mime_type) or "application/octet-stream"
    inline = is_inline(mime_type) and (not mime_type.startswith("image/") or mime_type in _SAFE_INLINE)
    disposition = "inline" if inline else "attachment"
    filename = file.filename or f"media-{file.id}"
    storage = media_storage(request)
    try:
        # An encrypted file is decrypted in memory; a plain local one is streamed from disk.
        sealed = await storage.sealed_with(file.storage_key) is not None
    except StorageError:
        raise NotFound("the stored file is missing", code="media_missing") from None
    path = storage.local_path(file.storage_key)
    if path is not None and not sealed:
        return FileResponse(
            path,
            media_type=mime_type,
            filename=filename,
            content_disposition_type=disposition,
            headers=_CONTENT_HEADERS,
        )
    try:
        content = await storage.read(file.storage_key)
    except StorageError:
        raise NotFound("the stored file is missing", code="media_missing") from None
    except KeyringError:
        raise LayanifyError(
            "the file is encrypted with a key that is not configured (LAYANIFY_ENCRYPTION_KEYS)",
            status_code=500,
            code="media_undecryptable",
        ) from None
    response = Response(content, media_type=mime_type, headers=_CONTENT_HEADERS)
    response.headers["Content-Disposition"] = _content_disposition(disposition, filename)
    return response


def _content_disposition(disposition: str, filename: str) -> str:
    """The header FileResponse would send: a plain `filename` when it is safe ASCII, else RFC 5987."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition}; filename*=utf-8''{quoted}"
    return f'{disposition}; filename="{filename}"'


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_UPLOAD_BODY)
async def upload_media(request: Request, principal: CurrentPrincipal, session: SessionDep) -> MediaUploaded:
    """Upload a file to send (multipart `file` and `number_id`); then send `{"type", "media_id"}`.

    The type and size must be ones WhatsApp accepts: JPEG/PNG images up to 5 MB, MP4/3GPP video and
    audio (AAC, AMR, MP3, M4A, OGG/OPUS) up to 16 MB, documents (PDF, Office, text) up to 100 MB and
    WebP stickers up to 100 KB (500 KB animated). Anything else is refused with 413 or 415.
    """
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise LayanifyError("send the upload with a Content-Length", status_code=411, code="length_required")
    if int(declared) > MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES:
        raise service.MediaTooLargeError(f"the largest file WhatsApp accepts is {MAX_UPLOAD_BYTES} bytes")
    try:
        form = await request.form(max_files=1, max_fields=8)
    except MultiPartException as exc:
        raise Unprocessable(f"not a valid multipart form: {exc.message}") from None
    try:
        upload = form.get("file")
        raw_number = form.get("number_id")
        if not isinstance(upload, UploadFile):
            raise Unprocessable("send the file as the multipart field `file`")
        if not isinstance(raw_number, str) or not _is_id(raw_number.strip()):
            raise Unprocessable("send `number_id`: the id of the number that will send the file")
        content = await upload.read(MAX_UPLOAD_BYTES + 1)
        mime_type = upload.content_type or "application/octet-stream"
        return await service.upload(
            session,
            workspace_id=principal.workspace_id,
            number_id=int(raw_number.strip()),
            filename=upload.filename,
            mime_type=mime_type,
            content=content,
            storage=media_storage(request),
            client=request.app.state.graph_client,
            keyring=request.app.state.keyring,
        )
    finally:
        await form.close()
