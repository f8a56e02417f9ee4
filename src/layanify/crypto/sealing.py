"""Each workspace's choice about encrypting message content, applied on every write.

Two kinds of writes store message content: ORM flushes (queued messages, media URLs, conversation
previews, file names) and the batched Core INSERTs of inbound messages and their media files. A
`before_flush` hook covers the first for every path at once; `seal_message_rows` and
`seal_filename_rows` cover the second. Both read the workspaces' choice once per
transaction (cached in the session), so a choice changed by an owner applies from the next transaction
in every process, with nothing to invalidate.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import get_history
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE

from layanify.accounts.models import Workspace
from layanify.audit import service as audit
from layanify.conversations.models import Conversation
from layanify.crypto.content import SealedContent, SealedText, keyring, search_tokens
from layanify.errors import NotFound
from layanify.media.models import MediaFile
from layanify.messaging.models import Message

_CACHE = "layanify.content_encryption"


def _choices(session: Session, workspace_ids: Iterable[int]) -> dict[int, bool]:
    """Whether each workspace encrypts, read once per transaction."""
    wanted = set(workspace_ids)
    cache: dict[int, bool] = session.info.setdefault(_CACHE, {})
    missing = wanted - cache.keys()
    if missing:
        with session.no_autoflush:
            rows = session.execute(
                select(Workspace.id, Workspace.content_encryption).where(Workspace.id.in_(sorted(missing)))
            )
            cache.update({workspace_id: bool(flag) for workspace_id, flag in rows})
        for workspace_id in missing:
            cache.setdefault(workspace_id, False)  # a workspace that is gone has nothing left to write
    return {workspace_id: cache[workspace_id] for workspace_id in wanted}


async def encrypting(session: AsyncSession, workspace_ids: Iterable[int]) -> set[int]:
    """The workspaces, of these, that encrypt their message content."""
    ids = set(workspace_ids)
    if not ids:
        return set()
    choices = await session.run_sync(_choices, ids)
    return {workspace_id for workspace_id, on in choices.items() if on}


def remember(session: AsyncSession, workspace_id: int, on: bool) -> None:
    """The workspace's choice just changed in this transaction: later writes in it follow the new one."""
    session.info.setdefault(_CACHE, {})[workspace_id] = on


async def workspace_choice(session: AsyncSession, workspace_id: int) -> bool:
    """Whether the workspace encrypts its message content; 404 for a workspace that does not exist."""
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace.content_encryption


async def choose(
    session: AsyncSession, workspace_id: int, on: bool, *, actor_user_id: int | None, ip: str | None = None
) -> bool:
    """Turn the workspace's content encryption on or off for what is written from now on (what is
    stored stays as it is and stays readable; `layanify keys rotate` encrypts older content)."""
    workspace = await session.get(Workspace, workspace_id, with_for_update=True)
    if workspace is None:
        raise NotFound("workspace not found")
    if on:
        keyring()  # refuse rather than accept a choice this process could not carry out
    if workspace.content_encryption != on:
        workspace.content_encryption = on
        await audit.record(
            session,
            workspace_id=workspace_id,
            actor_user_id=actor_user_id,
            action="workspace.content_encryption_on" if on else "workspace.content_encryption_off",
            target_type="workspace",
            target_id=str(workspace_id),
            ip=ip,
        )
    remember(session, workspace_id, on)
    await session.flush()
    return on


async def seal_message_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Prepare `messages` rows for a Core INSERT: content sealed and search tokens for the workspaces
    that encrypt (every row gets a `search_tokens` key, so an executemany sees one shape)."""
    sealed = await encrypting(session, (row["workspace_id"] for row in rows))
    for row in rows:
        if row["workspace_id"] in sealed:
            row["search_tokens"] = search_tokens(row["workspace_id"], row["content"])
            row["content"] = SealedContent(row["content"])
        else:
            row["search_tokens"] = None


async def seal_filename_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Prepare `media_files` rows for a Core INSERT: file names sealed for the workspaces that encrypt."""
    sealed = await encrypting(session, (row["workspace_id"] for row in rows))
    for row in rows:
        if row["workspace_id"] in sealed and row.get("filename"):
            row["filename"] = SealedText(row["filename"])


def _changed(obj: object, key: str) -> bool:
    """True when the attribute is loaded and was set in this unit of work.

    A loaded object whose attribute was never set has no entry in `committed_state`: that answers most
    objects of a flush without building their history (`state.attrs` built every attribute's state).
    """
    state = inspect(obj)
    if key not in state.dict or (state.key is not None and key not in state.committed_state):
        return False
    return bool(get_history(obj, key, passive=PASSIVE_NO_INITIALIZE).has_changes())


@event.listens_for(Session, "before_flush")
def _seal_before_flush(session: Session, flush_context: UOWTransaction, instances: object) -> None:
    """Seal the message contents and previews this flush writes, for the workspaces that encrypt."""
    messages: list[Message] = []
    conversations: list[Conversation] = []
    files: list[MediaFile] = []
    for obj in chain(session.new, session.dirty):
        if isinstance(obj, Message) and _changed(obj, "content"):
            messages.append(obj)
        elif isinstance(obj, Conversation) and _changed(obj, "last_message_preview"):
            conversations.append(obj)
        elif isinstance(obj, MediaFile) and _changed(obj, "filename"):
            files.append(obj)
    if not messages and not conversations and not files:
        return
    owners = {m.workspace_id for m in messages} | {c.workspace_id for c in conversations}
    choices = _choices(session, owners | {f.workspace_id for f in files})
    for message in messages:
        content = message.content
        if choices[message.workspace_id]:
            if not isinstance(content, SealedContent):
                message.content = SealedContent(content)
            message.search_tokens = search_tokens(message.workspace_id, content)
        else:
            if isinstance(content, SealedContent):
                message.content = dict(content)
            message.search_tokens = None
    for conversation in conversations:
        preview = conversation.last_message_preview
        if choices[conversation.workspace_id]:
            if not isinstance(preview, SealedText):
                conversation.last_message_preview = SealedText(preview)
        elif isinstance(preview, SealedText):
            conversation.last_message_preview = str(preview)
    for file in files:
        name = file.filename
        if choices[file.workspace_id] and name and not isinstance(name, SealedText):
            file.filename = SealedText(name)
        elif not choices[file.workspace_id] and isinstance(name, SealedText):
            file.filename = str(name)


@event.listens_for(Session, "after_transaction_end")
def _forget_choices(session: Session, transaction: SessionTransaction) -> None:
    """A new transaction reads the choices again (an owner may have changed one meanwhile)."""
    if transaction.parent is None:
        session.info.pop(_CACHE, None)
