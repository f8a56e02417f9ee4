"""Processing stored webhook events: every entry, change, message and status, routed by field."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts import repository as contacts_repository
from layanify.contacts import service as contacts
from layanify.conversations import service as conversations
from layanify.db.base import utcnow
from layanify.db.session import after_commit
from layanify.errors import NotFound
from layanify.messaging import service as messaging
from layanify.messaging.models import Message, MessageStatus
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.numbers.models import WhatsAppNumber
from layanify.observability import get_logger
from layanify.privacy.optout import apply_keyword, keyword_of
from layanify.webhooks import repository
from layanify.webhooks.ingest import ReceiptStage
from layanify.webhooks.models import EventStatus, WebhookEvent
from layanify.whatsapp.payloads import (
    WA_ID_MAX,
    Change,
    PayloadError,
    changes_of,
    fitting_id,
    normalize_error,
    parse_messages_value,
    parse_timestamp,
)

log = get_logger(__name__)
IGNORED_SHOWN = 100  # lines of an event summary's `ignored` kept (a 3 MB body can carry thousands)


@dataclass(frozen=True, slots=True)
class MessageChange:
    """A message an event stored or moved forward: what the real-time events announce after the commit."""

    workspace_id: int
    conversation_id: int
    message_id: int
    status: str


@dataclass
class Outcome:
    """What processing one event did; stored as the event's summary."""

    workspace_ids: set[int] = field(default_factory=set)
    fields: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    message_ids: list[int] = field(default_factory=list)
    unknown_phone_number_ids: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    stored: list[MessageChange] = field(default_factory=list)  # new inbound messages
    advanced: list[MessageChange] = field(default_factory=list)  # messages a status moved forward

    def count(self, key: str, n: int = 1) -> None:
        """Add to a named counter."""
        self.counts[key] = self.counts.get(key, 0) + n

    def _ignored_shown(self) -> list[str]:
        more = len(self.ignored) - IGNORED_SHOWN
        return self.ignored[:IGNORED_SHOWN] + ([f"… and {more} more"] if more > 0 else [])

    def summary(self) -> dict[str, Any]:
        """The JSON stored on the event."""
        return {
            "workspace_ids": sorted(self.workspace_ids),
            "counts": self.counts,
            "message_ids": self.message_ids[:100],
            "unknown_phone_number_ids": sorted(self.unknown_phone_number_ids),
            "ignored": self._ignored_shown(),
            "errors": self.errors[:20],
        }


Handler = Callable[[AsyncSession, Change, datetime, Outcome], Awaitable[None]]


async def _number_for(
    session: AsyncSession, phone_number_id: str | None, outcome: Outcome
) -> WhatsAppNumber | None:
    if not phone_number_id:
        outcome.ignored.append("change without metadata.phone_number_id")
        return None
    number = await numbers_repository.by_phone_number_id(session, phone_number_id)
    if number is None:
        outcome.unknown_phone_number_ids.add(phone_number_id)
        return None
    outcome.workspace_ids.add(number.workspace_id)
    return number


async def handle_messages(
    session: AsyncSession, change: Change, received_at: datetime, outcome: Outcome
) -> None:
    """`messages`: inbound messages (every type), statuses and system-level errors."""
    value = parse_messages_value(change.value)
    outcome.errors.extend(normalize_error(e) for e in value.errors)
    outcome.ignored.extend(value.rejected)
    number = await _number_for(session, value.phone_number_id, outcome)
    if number is None:
        outcome.count("skipped_unknown_number", len(value.messages) + len(value.statuses))
        return
    numbers.learn_display_number(number, value.display_phone_number)
    for message in value.messages:
        sender = message.get("from") if isinstance(message.get("from"), str) else None
        if sender is None:
            await _handle_senderless(session, number, message, received_at, outcome)
            continue
        profile = value.profiles.get(sender)
        contact = await contacts.upsert_contact(
            session,
            number.workspace_id,
            sender,
            profile_name=profile.name if profile else "",
            user_id=profile.user_id if profile else None,
            seen_at=parse_timestamp(message.get("timestamp")) or received_at,
        )
        conversation = await conversations.open_conversation(
            session, number.workspace_id, number.id, contact.id
        )
        message_id = await messaging.record_inbound(
            session,
            workspace_id=number.workspace_id,
            conversation=conversation,
            message=message,
            received_at=received_at,
        )
        if message_id is None:
            outcome.count("duplicate_messages")
        else:
            outcome.count("messages")
            outcome.message_ids.append(message_id)
            keyword = keyword_of(message)  # STOP / START from the customer: their opt-out
            if keyword is not None:
                at = parse_timestamp(message.get("timestamp")) or received_at
                await apply_keyword(session, contact, conversation.id, opted_out=keyword, at=at)
            outcome.stored.append(
                MessageChange(number.workspace_id, conversation.id, message_id, MessageStatus.RECEIVED.value)
            )
            log.debug("message_stored", message_id=message_id, wamid=message.get("id"), number_id=number.id)
    for status in value.statuses:
        result = await messaging.apply_status(
            session,
            workspace_id=number.workspace_id,
            number_id=number.id,
            status=status,
            received_at=received_at,
        )
        outcome.count(f"statuses_{result.result}")
        if result.result == "applied" and result.message_id is not None:
            moved = await session.get(Message, result.message_id)  # in the identity map: no query
            if moved is not None:
                outcome.advanced.append(
                    MessageChange(moved.workspace_id, moved.conversation_id, moved.id, moved.status)
                )


async def _handle_senderless(
    session: AsyncSession,
    number: WhatsAppNumber,
    message: dict[str, Any],
    received_at: datetime,
    outcome: Outcome,
) -> None:
    """System messages without `from` (user_changed_user_id): update the contact they name."""
    system: dict[str, Any] = message["system"] if isinstance(message.get("system"), dict) else {}
    previous = system.get("previous_user_id")
    new = system.get("user_id")
    contact = None
    # The old id first; the new one finds the contact when this change was already applied (a redelivery).
    for user_id in (previous, new):
        if contact is None and isinstance(user_id, str) and user_id:
            contact = await contacts_repository.by_user_id(session, number.workspace_id, user_id)
    if contact is None:
        outcome.count("senderless_unmatched")
        outcome.ignored.append(f"message {message.get('id')!s} has no sender and names no known contact")
        return
    at = parse_timestamp(message.get("timestamp")) or received_at
    if isinstance(new, str) and new and (contact.profile_seen_at is None or at >= contact.profile_seen_at):
        contact.user_id = new
        contact.profile_seen_at = at
    conversation = await conversations.open_conversation(session, number.workspace_id, number.id, contact.id)
    message_id = await messaging.record_inbound(
        session,
        workspace_id=number.workspace_id,
        conversation=conversation,
        message=message,
        received_at=received_at,
    )
    outcome.count("messages" if message_id else "duplicate_messages")
    if message_id:
        outcome.message_ids.append(message_id)
        outcome.stored.append(
            MessageChange(number.workspace_id, conversation.id, message_id, MessageStatus.RECEIVED.value)
        )


async def handle_template_status(
    session: AsyncSession, change: Change, _: datetime, outcome: Outcome
) -> None:
    """`message_template_status_update`: approved / rejected / paused … on the WABA's template."""
    templates = await numbers.apply_template_update(session, change.waba_id, change.value, quality=False)
    outcome.workspace_ids.update(t.workspace_id for t in templates)
    outcome.count("templates", len(templates))


async def handle_template_quality(
    session: AsyncSession, change: Change, _: datetime, outcome: Outcome
) -> None:
    """`message_template_quality_update`: the template's new quality score."""
    templates = await numbers.apply_template_update(session, change.waba_id, change.value, quality=True)
    outcome.workspace_ids.update(t.workspace_id for t in templates)
    outcome.count("templates", len(templates))


async def handle_number_quality(session: AsyncSession, change: Change, _: datetime, outcome: Outcome) -> None:
    """`phone_number_quality_update`: messaging limit / quality reflected on the number."""
    updated = await numbers.apply_quality_update(session, change.waba_id, change.value)
    outcome.workspace_ids.update(n.workspace_id for n in updated)
    outcome.count("numbers_updated", len(updated))


async def handle_account_update(session: AsyncSession, change: Change, _: datetime, outcome: Outcome) -> None:
    """`account_update`: verification, bans and restrictions reflected on the WABA's numbers."""
    updated = await numbers.apply_account_update(session, change.waba_id, change.value)
    outcome.workspace_ids.update(n.workspace_id for n in updated)
    outcome.count("numbers_updated", len(updated))


async def handle_user_preferences(
    session: AsyncSession, change: Change, received_at: datetime, outcome: Outcome
) -> None:
    """`user_preferences`: a customer stopped or resumed marketing messages."""
    value = parse_messages_value(change.value)
    number = await _number_for(session, value.phone_number_id, outcome)
    if number is None:
        return
    for pref in change.value.get("user_preferences") or []:
        if not isinstance(pref, dict) or not isinstance(pref.get("wa_id"), str):
            continue
        if fitting_id(pref["wa_id"], WA_ID_MAX) is None:
            outcome.ignored.append(f"user preference for a `wa_id` of {len(pref['wa_id'])} characters")
            continue
        if pref.get("category") != "marketing_messages" or pref.get("value") not in ("stop", "resume"):
            outcome.ignored.append(f"user preference {pref.get('category')}={pref.get('value')}")
            continue
        profile = value.profiles.get(pref["wa_id"])
        contact = await contacts.upsert_contact(
            session, number.workspace_id, pref["wa_id"], profile_name=profile.name if profile else ""
        )
        at = parse_timestamp(pref.get("timestamp")) or received_at
        await contacts.set_marketing_preference(contact, opted_out=pref["value"] == "stop", at=at)
        outcome.count("preferences")


HANDLERS: dict[str, Handler] = {
    "messages": handle_messages,
    "message_template_status_update": handle_template_status,
    "message_template_quality_update": handle_template_quality,
    "phone_number_quality_update": handle_number_quality,
    "account_update": handle_account_update,
    "user_preferences": handle_user_preferences,
}


async def process_body(session: AsyncSession, body: bytes, received_at: datetime) -> Outcome:
    """Apply every change of a raw webhook body. Raises PayloadError for an unreadable envelope."""
    outcome = Outcome()
    for change in changes_of(body):
        outcome.fields.append(change.field)
        handler = HANDLERS.get(change.field)
        if handler is None:
            outcome.ignored.append(f"field {change.field!r}")
            log.info("webhook_field_ignored", field=change.field, waba_id=change.waba_id)
            continue
        await handler(session, change, received_at, outcome)
    if outcome.unknown_phone_number_ids:
        log.warning(
            "webhook_unknown_phone_number_ids", phone_number_ids=sorted(outcome.unknown_phone_number_ids)
        )
    return outcome


async def workspace_of(session: AsyncSession, body: bytes) -> int | None:
    """The workspace an event concerns, read from its phone number ids (so even a failed event is shown)."""
    try:
        changes = changes_of(body)
    except PayloadError:
        return None
    for change in changes:
        phone_number_id = parse_messages_value(change.value).phone_number_id
        number = (
            await numbers_repository.by_phone_number_id(session, phone_number_id) if phone_number_id else None
        )
        if number is not None:
            return number.workspace_id
        for number in await numbers_repository.by_waba(session, change.waba_id):
            return number.workspace_id
    return None


# --- receipts waiting in a SQLite receipts file ---------------------------------------------------

TAKE_RECEIVED_LIMIT = 5000


def receipt_stage(session: AsyncSession) -> ReceiptStage | None:
    """The receipts file of the session's database: SQLite files only (decision 35)."""
    bind = session.get_bind()
    database = bind.engine.url.database
    if bind.dialect.name != "sqlite" or not database or database.startswith((":memory:", "file:")):
        return None
    return ReceiptStage.at(Path(database))


async def take_received(session: AsyncSession, limit: int = TAKE_RECEIVED_LIMIT) -> int:
    """Move up to `limit` webhook receipts waiting in the receipts file into `webhook_events`, in this
    unit of work.

    They keep their ids, and the hand-over mark (the highest id moved) moves in the same transaction, so
    none is ever moved twice. The receipts file deletes them once this unit of work has committed; a crash
    in between leaves them there, below the mark, and a later call deletes them. Returns how many events
    were added (0 on PostgreSQL, where receipts are written to `webhook_events` directly).
    """
    stage = receipt_stage(session)
    if stage is None:
        return 0
    mark = await repository.handover_mark(session)
    rows, moved_left = await asyncio.to_thread(stage.read, limit, mark)
    if not rows and not moved_left:  # moved_left: moved before a stop that came before their deletion
        return 0
    added: list[int] = []
    if rows:
        added = await repository.insert_received(session, rows)
        mark = rows[-1][0]
        await repository.set_handover_mark(session, mark)

    async def forget() -> None:
        await asyncio.to_thread(stage.forget, mark)

    after_commit(session, forget)
    renumbered = sorted(set(added) - {event_id for event_id, _, _ in rows})
    if renumbered:  # their ids were taken by rows stored around the receipts file
        log.warning("webhook_receipts_renumbered", event_ids=renumbered)
    return len(added)


# --- the webhook log: list, show, replay ---------------------------------------------------------


async def list_events(
    session: AsyncSession, *, workspace_id: int | None, limit: int, before_id: int | None, status: str | None
) -> list[WebhookEvent]:
    """The newest events (of one workspace, or all of them for the CLI)."""
    return await repository.page(
        session, workspace_id=workspace_id, limit=limit, before_id=before_id, status=status
    )


async def get_event(session: AsyncSession, event_id: int, *, workspace_id: int | None) -> WebhookEvent:
    """One event; 404 when missing or another workspace's."""
    event = await repository.get(session, event_id, workspace_id)
    if event is None:
        raise NotFound("webhook event not found")
    return event


async def replay_event(session: AsyncSession, event_id: int, *, workspace_id: int | None) -> WebhookEvent:
    """Queue an event to be processed again now (safe: messages and statuses are deduplicated)."""
    event = await get_event(session, event_id, workspace_id=workspace_id)
    event.status = EventStatus.PENDING
    event.attempts = 0
    event.next_attempt_at = utcnow()
    await session.flush()
    log.info("webhook_event_replay", event_id=event.id)
    return event
