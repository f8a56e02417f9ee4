"""Privacy operations: export everything held about a contact, erase it, and the retention policy.

An erasure is one unit of work: every row about the contact goes, raw webhook events are deleted or
redacted (rules in privacy/events.py), and the stored files are deleted only after the commit, so an
erasure that rolls back keeps them. The audit log records the action with counts only.
"""

from __future__ import annotations

from typing import IO, Any

import orjson
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.audit import service as audit
from layanify.contacts.models import Contact
from layanify.db.session import after_commit
from layanify.errors import NotFound
from layanify.media.models import MEDIA_MESSAGE_TYPES, MediaFile
from layanify.media.storage import Storage
from layanify.messaging.models import Direction, Message
from layanify.observability import get_logger
from layanify.privacy import export, repository
from layanify.privacy.events import Subject, split
from layanify.privacy.models import KINDS, RetentionPolicy
from layanify.privacy.schemas import RetentionRead, RetentionUpdate
from layanify.webhooks.models import WebhookEvent

log = get_logger(__name__)
# Raw events are searched this many at a time.
SCAN_PAGE = 500


async def events_mentioning(session: AsyncSession, workspace_id: int, subject: Subject) -> list[WebhookEvent]:
    """The raw events that may concern the workspace and whose body names the contact.

    Bodies are sealed at rest, so they are read (and opened) page by page and searched here; which
    parts of a body are about the contact is then decided by `events.split`.
    """
    needles = [identity.encode() for identity in subject.identities]
    found: list[WebhookEvent] = []

    def keep(page: list[WebhookEvent]) -> None:
        for event in page:
            if any(needle in event.body for needle in needles):
                found.append(event)
            else:
                session.expunge(event)  # keep only the matches in memory

    after_id = 0
    while page := await repository.workspace_events(
        session, workspace_id, after_id=after_id, limit=SCAN_PAGE
    ):
        keep(page)
        after_id = page[-1].id
    after_id = 0
    while True:
        shared, after_id = await repository.shared_event_ids(
            session, workspace_id, after_id=after_id, limit=SCAN_PAGE
        )
        keep(await repository.events_by_ids(session, shared))
        if not after_id:
            break
    return sorted(found, key=lambda event: event.id)


def identities_of(contact: Contact) -> frozenset[str]:
    """How webhooks name the contact: its wa_id, and its business-scoped user id when Meta sent one."""
    return frozenset(i for i in (contact.wa_id, contact.user_id) if i)


async def _contact(session: AsyncSession, workspace_id: int, contact_id: int) -> Contact:
    contact = await repository.contact_locked(session, workspace_id, contact_id)
    if contact is None:
        raise NotFound("contact not found")
    return contact


def subject_of(contact: Contact, messages: list[Message], numbers: dict[int, str]) -> Subject:
    """The contact as raw webhook bodies name it, within the workspace's numbers."""
    return Subject(
        identities=identities_of(contact),
        wamids=frozenset(m.wamid for m in messages if m.wamid),
        phone_number_ids=frozenset(numbers.values()),
    )


def _upload_ids(messages: list[Message]) -> set[str]:
    """Meta's media ids of the files the business sent in these messages (our uploads)."""
    found = set()
    for message in messages:
        if message.direction == Direction.OUTBOUND.value and message.type in MEDIA_MESSAGE_TYPES:
            media_id = (message.content or {}).get("media_id")
            if isinstance(media_id, str) and media_id:
                found.add(media_id)
    return found


async def files_of(
    session: AsyncSession, workspace_id: int, contact_id: int, messages: list[Message]
) -> list[MediaFile]:
    """The contact's files: media it sent us, and the uploads the business sent it."""
    files = await repository.media_of_messages(session, workspace_id, contact_id)
    files += await repository.uploads_by_meta_id(session, workspace_id, _upload_ids(messages))
    return files


async def _unshared(
    session: AsyncSession, workspace_id: int, contact_id: int, uploads: list[MediaFile]
) -> list[MediaFile]:
    """The uploads no message to anyone else used (a file sent to several customers stays)."""
    if not uploads:
        return []
    since = min(upload.created_at for upload in uploads)
    others = await repository.other_outbound_media(session, workspace_id, contact_id, since=since)
    used = _upload_ids(others)
    return [upload for upload in uploads if upload.meta_media_id not in used]


# --- Export ---------------------------------------------------------------------------------------


async def export_contact(
    session: AsyncSession,
    *,
    workspace_id: int,
    contact_id: int,
    actor_user_id: int | None,
    storage: Storage,
    target: IO[bytes],
) -> dict[str, int]:
    """Write a zip of everything held about the contact to `target`: `contact.json` (the contact, its
    conversations, messages with their status history, files' facts, automation records and its part
    of the raw webhook events) and `media/<id>-<filename>` for every stored file. 404 for another
    workspace's contact. Returns the counts the audit log keeps."""
    contact = await _contact(session, workspace_id, contact_id)
    numbers = await repository.numbers_of(session, workspace_id)
    messages = await repository.messages_of(session, workspace_id, contact.id)
    subject = subject_of(contact, messages, numbers)
    events = []
    for event in await events_mentioning(session, workspace_id, subject):
        try:
            payload = orjson.loads(event.body)
        except orjson.JSONDecodeError:
            continue  # unreadable: which part is whose cannot be told, so nobody else's data goes out
        theirs, _, _ = split(payload, subject)
        if theirs is not None:
            events.append((event, theirs))
    counts = await export.write_zip(
        target,
        storage=storage,
        workspace_id=workspace_id,
        contact=contact,
        conversations=await repository.conversations_of(session, workspace_id, contact.id),
        messages=messages,
        status_events=await repository.status_events_of(
            session, workspace_id, contact.id, numbers.keys(), subject.identities
        ),
        files=await files_of(session, workspace_id, contact.id, messages),
        chat_actions=await repository.chat_actions_of(session, workspace_id, contact.id),
        auto_replies=await repository.auto_replies_of(session, contact.id),
        events=events,
    )
    await audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="contact.exported",
        target_type="contact",
        target_id=str(contact.id),
        details=counts,
    )
    log.info("contact_exported", workspace_id=workspace_id, contact_id=contact.id, **counts)
    return counts


# --- Erasure --------------------------------------------------------------------------------------


async def _erase_events(session: AsyncSession, workspace_id: int, subject: Subject) -> tuple[int, int]:
    """Delete the raw events only about the contact, redact the others naming it; (deleted, redacted)."""
    doomed: list[WebhookEvent] = []
    redacted = 0
    for event in await events_mentioning(session, workspace_id, subject):
        try:
            payload = orjson.loads(event.body)
        except orjson.JSONDecodeError:
            # Unreadable, so it cannot be redacted: the workspace's own event goes whole.
            if event.workspace_id == workspace_id:
                doomed.append(event)
            continue
        _, rest, ours = split(payload, subject)
        if not ours:
            continue  # it names the customer only in another workspace's changes
        if rest is None:
            doomed.append(event)
        elif rest != payload:
            event.body = orjson.dumps(rest)
            redacted += 1
    if doomed:
        ids = [event.id for event in doomed]
        for event in doomed:
            session.expunge(event)
        await session.execute(
            delete(WebhookEvent).where(WebhookEvent.id.in_(ids)).execution_options(synchronize_session=False)
        )
    return len(doomed), redacted


async def erase_contact(
    session: AsyncSession,
    *,
    workspace_id: int,
    contact_id: int,
    actor_user_id: int | None,
    storage: Storage,
) -> dict[str, int]:
    """Erase the contact: its messages (queued ones are cancelled with them), their status history,
    media files (rows now, stored bytes after the commit), chat actions, auto-reply records,
    conversations, the contact, and the raw webhook events about it. 404 for another workspace's
    contact. Returns how many of each kind went (what the audit log keeps)."""
    contact = await _contact(session, workspace_id, contact_id)
    numbers = await repository.numbers_of(session, workspace_id)
    messages = await repository.messages_of(session, workspace_id, contact.id)
    subject = subject_of(contact, messages, numbers)
    inbound_files = await repository.media_of_messages(session, workspace_id, contact.id)
    uploads = await repository.uploads_by_meta_id(session, workspace_id, _upload_ids(messages))
    files = inbound_files + await _unshared(session, workspace_id, contact.id, uploads)
    keys = [f.storage_key for f in files if f.storage_key]
    cancelled = await repository.count_in_outbox(session, workspace_id, contact.id)
    events_deleted, events_redacted = await _erase_events(session, workspace_id, subject)
    for loaded in [contact, *messages, *files]:
        session.expunge(loaded)  # the rows go below, set-wise; nothing of them may be flushed again
    counts = await repository.delete_contact_rows(
        session,
        workspace_id,
        contact_id,
        number_ids=numbers.keys(),
        identities=subject.identities,
        media_ids=[f.id for f in files],
    )
    counts |= {
        "queued_cancelled": cancelled,
        "webhook_events_deleted": events_deleted,
        "webhook_events_redacted": events_redacted,
    }
    await audit.record(
        session,
        workspace_id=workspace_id,
        actor_user_id=actor_user_id,
        action="contact.erased",
        target_type="contact",
        target_id=str(contact_id),
        details=counts,
    )
    delete_files_after_commit(session, storage, keys)
    log.info("contact_erased", workspace_id=workspace_id, contact_id=contact_id, **counts)
    return counts


def delete_files_after_commit(session: AsyncSession, storage: Storage, keys: list[str]) -> None:
    """Remove stored files once the unit of work has committed (a rollback keeps them)."""
    if not keys:
        return

    async def remove() -> None:
        for key in keys:
            try:
                await storage.delete(key)
            except Exception:
                log.exception("media_file_not_deleted", storage_key=key)

    after_commit(session, remove)


async def workspace_of_contact(session: AsyncSession, contact_id: int) -> int:
    """The workspace a contact belongs to (for the operator's CLI); 404 when there is no such contact."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"there is no contact {contact_id}")
    return contact.workspace_id


# --- Retention policy -----------------------------------------------------------------------------


def to_read(policy: RetentionPolicy | None) -> RetentionRead:
    """The API view of a workspace's policy (the defaults, keep forever, without one)."""
    if policy is None:
        return RetentionRead()
    counts = policy.last_purge_counts
    return RetentionRead(
        messages_days=policy.messages_days,
        media_days=policy.media_days,
        webhook_events_days=policy.webhook_events_days,
        last_purge_at=policy.last_purge_at,
        last_purge_counts={kind: int(counts.get(kind, 0)) for kind in KINDS} if counts else None,
    )


async def get_retention(session: AsyncSession, workspace_id: int) -> RetentionRead:
    """The workspace's retention policy and its last purge."""
    return to_read(await repository.policy(session, workspace_id))


async def save_retention(
    session: AsyncSession, workspace_id: int, data: RetentionUpdate, *, user_id: int | None
) -> RetentionRead:
    """Set how long each kind is kept (null: forever); the next purge applies it."""
    policy = await repository.policy(session, workspace_id)
    if policy is None:
        policy = RetentionPolicy(workspace_id=workspace_id)
        session.add(policy)
    values: dict[str, Any] = data.model_dump()
    for kind in KINDS:
        setattr(policy, f"{kind}_days", values[f"{kind}_days"])
    policy.updated_by_user_id = user_id
    await session.flush()
    log.info("retention_saved", workspace_id=workspace_id, user_id=user_id, **data.model_dump())
    return to_read(policy)
