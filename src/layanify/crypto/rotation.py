"""`layanify keys rotate` for message content: everything encrypted ends up under the current key.

Message contents (with their search tokens), conversation previews, media file names, raw webhook
bodies and media files are walked in id order, a batch per transaction. A value is rewritten when it is
encrypted with another key, or when it is plain and its workspace encrypts (content stored before the
owner turned encryption on). Each value is either old or new at any moment and the keyring still holds
both, so the run can be interrupted anywhere and started again; once it has finished, the old keys can
be removed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    LargeBinary,
    Table,
    Text,
    bindparam,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from layanify.conversations.models import Conversation
from layanify.crypto import content, sealing
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.db.sql import table_of
from layanify.media.models import MediaFile, MediaStatus
from layanify.media.storage import Storage, StorageError
from layanify.messaging.models import Message
from layanify.observability import get_logger
from layanify.webhooks.models import WebhookEvent

log = get_logger(__name__)


@dataclass
class ContentRotation:
    """How many of each kind of value were (re-)encrypted under the current key."""

    messages: int = 0
    previews: int = 0
    file_names: int = 0
    webhook_bodies: int = 0
    media_files: int = 0
    missing_files: int = 0


async def rotate_content(
    sessionmaker: Sessionmaker, storage: Storage, *, batch: int = 500
) -> ContentRotation:
    """Re-encrypt message content, previews, file names, raw webhook bodies and media files under the
    current key."""
    report = ContentRotation()
    report.messages = await _rotate_messages(sessionmaker, batch)
    report.previews = await _rotate_texts(sessionmaker, table_of(Conversation).c.last_message_preview, batch)
    report.file_names = await _rotate_texts(sessionmaker, table_of(MediaFile).c.filename, batch)
    report.webhook_bodies = await _rotate_webhook_bodies(sessionmaker, batch)
    report.media_files, report.missing_files = await _rotate_files(sessionmaker, storage, batch)
    return report


async def _in_batches(
    sessionmaker: Sessionmaker,
    kind: str,
    table: Table,
    columns: Sequence[ColumnElement[Any]],
    batch: int,
    rewrite: Callable[[AsyncSession, Sequence[Any]], Awaitable[int]],
) -> int:
    """Walk `table` in id order, `batch` rows and one transaction a page: each row is its id then
    `columns`; `rewrite` re-encrypts what needs it in that transaction and says how many it rewrote."""
    rewritten, after = 0, 0
    while True:
        async with unit_of_work(sessionmaker) as session:
            page = select(table.c.id, *columns).where(table.c.id > after).order_by(table.c.id).limit(batch)
            rows = (await session.execute(page)).all()
            if not rows:
                return rewritten
            rewritten += await rewrite(session, rows)
            after = rows[-1][0]
        log.info("content_rotation_progress", kind=kind, after_id=after, rewritten=rewritten)


async def _update_by_id(
    session: AsyncSession, column: Column[Any], stored_as: TypeEngine[Any], changes: list[dict[str, Any]]
) -> int:
    """Write each change's `sealed` (already the stored form, `stored_as`) into `column` of the row whose
    id is its `rid`; how many."""
    if changes:
        table = column.table
        stmt = (
            update(table)
            .where(table.c.id == bindparam("rid"))
            .values({column.name: bindparam("sealed", type_=stored_as)})
        )
        await (await session.connection()).execute(stmt, changes)
    return len(changes)


async def _rotate_messages(sessionmaker: Sessionmaker, batch: int) -> int:
    ring = content.keyring()
    messages = table_of(Message)
    stored = type_coerce(messages.c.content, JSON)  # the stored form, not decrypted

    async def rewrite(session: AsyncSession, rows: Sequence[Any]) -> int:
        sealed = await sealing.encrypting(session, {row[1] for row in rows})
        changes: list[dict[str, Any]] = []
        for message_id, workspace_id, value in rows:
            token = content.sealed_token(value)
            if token is not None:
                if ring.key_id_of(token) == ring.current_id:
                    continue
                plain = content.open_json(token)
            elif workspace_id in sealed and isinstance(value, dict):
                plain = value
            else:
                continue
            changes.append(
                {
                    "mid": message_id,
                    "sealed": content.seal_json(plain),
                    "tokens": content.search_tokens(workspace_id, plain),
                }
            )
        if changes:  # the content and its search tokens together
            stmt = (
                update(messages)
                .where(messages.c.id == bindparam("mid"))
                .values(
                    content=bindparam("sealed", type_=JSON()),
                    search_tokens=bindparam("tokens", type_=Text()),
                )
            )
            await (await session.connection()).execute(stmt, changes)
        return len(changes)

    columns = [messages.c.workspace_id, stored]
    return await _in_batches(sessionmaker, "messages", messages, columns, batch, rewrite)


async def _rotate_texts(sessionmaker: Sessionmaker, column: Column[Any], batch: int) -> int:
    """An `EncryptedText` column (previews, file names) of a table with `id` and `workspace_id`."""
    ring = content.keyring()
    table = column.table

    async def rewrite(session: AsyncSession, rows: Sequence[Any]) -> int:
        sealed = await sealing.encrypting(session, {row[1] for row in rows})
        changes: list[dict[str, Any]] = []
        for row_id, workspace_id, value in rows:
            if not value:
                continue
            key_id = content.text_key_id(value)
            if key_id == ring.current_id or (key_id is None and workspace_id not in sealed):
                continue
            changes.append({"rid": row_id, "sealed": content.seal_text(content.open_text(value))})
        return await _update_by_id(session, column, Text(), changes)

    columns = [table.c.workspace_id, type_coerce(column, Text)]
    return await _in_batches(sessionmaker, column.name, table, columns, batch, rewrite)


async def _rotate_webhook_bodies(sessionmaker: Sessionmaker, batch: int) -> int:
    cipher = content.configured()
    ring = content.keyring()
    events = table_of(WebhookEvent)
    stored = type_coerce(events.c.body, LargeBinary)
    magic = len(content.BYTES_MAGIC)

    # Only the header is read to decide; a body is fetched whole only when it is rewritten.
    head = type_coerce(func.substr(stored, 1, magic + 256), LargeBinary)

    async def rewrite(session: AsyncSession, rows: Sequence[Any]) -> int:
        wanted = []
        for event_id, head in rows:
            key_id = content.bytes_key_id(bytes(head))
            if key_id == ring.current_id:
                continue
            if key_id is None and not (cipher is not None and cipher.seal_webhook_bodies):
                continue
            wanted.append(event_id)
        if not wanted:
            return 0
        return await _update_by_id(
            session, events.c.body, LargeBinary(), await _resealed_bodies(session, wanted)
        )

    return await _in_batches(sessionmaker, "webhook_bodies", events, [head], batch, rewrite)


async def _resealed_bodies(session: AsyncSession, event_ids: list[int]) -> list[dict[str, Any]]:
    events = table_of(WebhookEvent)
    rows = await session.execute(
        select(events.c.id, type_coerce(events.c.body, LargeBinary)).where(events.c.id.in_(event_ids))
    )
    ad = content.WEBHOOK_AD
    return [
        {"rid": event_id, "sealed": content.seal_bytes(content.open_bytes(bytes(body), ad), ad)}
        for event_id, body in rows
    ]


async def _rotate_files(sessionmaker: Sessionmaker, storage: Storage, batch: int) -> tuple[int, int]:
    """Files are rewritten atomically (temporary file, then rename), each on its own."""
    ring = content.keyring()
    rewritten = missing = after = 0
    while True:
        async with unit_of_work(sessionmaker) as session:
            rows = (
                await session.execute(
                    select(MediaFile.id, MediaFile.workspace_id, MediaFile.storage_key)
                    .where(
                        MediaFile.id > after,
                        MediaFile.status == MediaStatus.STORED.value,
                        MediaFile.storage_key.is_not(None),
                    )
                    .order_by(MediaFile.id)
                    .limit(batch)
                )
            ).all()
            sealed = await sealing.encrypting(session, {row[1] for row in rows})
        if not rows:
            return rewritten, missing
        for _, workspace_id, key in rows:
            assert key is not None
            try:
                key_id = await storage.sealed_with(key)
                if key_id == ring.current_id or (key_id is None and workspace_id not in sealed):
                    continue
                await storage.write(key, await storage.read(key), seal=True)
            except StorageError:
                missing += 1
                continue
            rewritten += 1
        after = rows[-1][0]
