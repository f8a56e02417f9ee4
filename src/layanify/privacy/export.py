"""The export archive of one contact: `contact.json` and its media files, as a zip."""

from __future__ import annotations

import mimetypes
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

import orjson
from sqlalchemy import inspect

from layanify.automation.models import AutoReplySent
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.base import utcnow
from layanify.media.models import MediaFile
from layanify.media.service import clean_filename
from layanify.media.storage import Storage, StorageError
from layanify.messaging.models import ChatAction, Message, MessageStatusEvent
from layanify.webhooks.models import WebhookEvent

FORMAT = "layanify.contact-export"
VERSION = 1


def columns(row: Any) -> dict[str, Any]:
    """Every column of a model row by attribute name (orjson writes the datetimes as ISO 8601)."""
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


def archive_name(file: MediaFile) -> str:
    """Where a file goes in the archive: `media/<id>-<filename>`."""
    name = clean_filename(file.filename)
    if name is None:
        extension = mimetypes.guess_extension((file.mime_type or "").split(";")[0].strip()) or ""
        name = f"{file.media_type or 'file'}{extension}"
    return f"media/{file.id}-{name}"


def _event(event: WebhookEvent, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event.id,
        "received_at": event.received_at,
        "processed_at": event.processed_at,
        "status": event.status,
        "fields": event.fields,
        # Only the parts about this contact: a batch's other customers are left out.
        "payload": payload,
    }


async def write_zip(
    target: IO[bytes],
    *,
    storage: Storage,
    workspace_id: int,
    contact: Contact,
    conversations: Sequence[Conversation],
    messages: Sequence[Message],
    status_events: Sequence[MessageStatusEvent],
    files: Sequence[MediaFile],
    chat_actions: Sequence[ChatAction],
    auto_replies: Sequence[AutoReplySent],
    events: Sequence[tuple[WebhookEvent, dict[str, Any]]],
    now: datetime | None = None,
) -> dict[str, int]:
    """Write the archive; returns how many of each kind it holds."""
    history: dict[int, list[dict[str, Any]]] = {}
    unmatched = []
    for status in status_events:
        row = columns(status)
        if status.message_id is None:
            unmatched.append(row)
        else:
            history.setdefault(status.message_id, []).append(row)
    files_by_message = {f.message_id: f.id for f in files if f.message_id is not None}
    media_rows = []
    stored = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            row = columns(file) | {"archive_path": None}
            if file.storage_key:
                try:
                    content = await storage.read(file.storage_key)
                except StorageError:
                    row["missing"] = True
                else:
                    row["archive_path"] = archive_name(file)
                    # Media is compressed already: stored as is.
                    archive.writestr(row["archive_path"], content, compress_type=zipfile.ZIP_STORED)
                    stored += 1
            media_rows.append(row)
        document = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": now or utcnow(),
            "workspace_id": workspace_id,
            "contact": columns(contact),
            "conversations": [columns(c) for c in conversations],
            "messages": [
                columns(m)
                | {"status_history": history.get(m.id, []), "media_file_id": files_by_message.get(m.id)}
                for m in messages
            ],
            "unmatched_status_events": unmatched,
            "media_files": media_rows,
            "chat_actions": [columns(a) for a in chat_actions],
            "auto_replies_sent": [columns(r) for r in auto_replies],
            "webhook_events": [_event(event, payload) for event, payload in events],
        }
        archive.writestr("contact.json", orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return {
        "conversations": len(conversations),
        "messages": len(messages),
        "status_events": len(status_events),
        "media_files": stored,
        "webhook_events": len(events),
    }
