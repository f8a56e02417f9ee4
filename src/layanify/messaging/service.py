"""Message operations: store inbound messages once, advance statuses monotonically by rank."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.conversations import service as conversations
from layanify.conversations.models import Conversation
from layanify.errors import NotFound
from layanify.messaging import repository
from layanify.messaging.models import STATUS_RANK, Direction, Message, MessageStatus, MessageStatusEvent
from layanify.whatsapp.payloads import message_content, normalize_error, parse_timestamp, preview

# Types that are not a customer writing to us: they neither open the window nor count as unread.
NOT_CUSTOMER_WRITING = frozenset({"system"})
STATUS_TIME_COLUMNS = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "played": "played_at",
    "failed": "failed_at",
}


@dataclass(frozen=True)
class StatusOutcome:
    """What one status report did: `applied`, `history_only`, `duplicate` or `unmatched`."""

    result: str
    message_id: int | None


async def record_inbound(
    session: AsyncSession,
    *,
    workspace_id: int,
    conversation: Conversation,
    message: dict[str, Any],
    received_at: datetime,
) -> int | None:
    """Store an inbound message once (unique wamid); its id, or None when it was already stored."""
    values = inbound_row(workspace_id, conversation.id, message, received_at)
    message_id = await repository.insert_message(session, values)
    if message_id is None:
        return None
    note_inbound(conversation, values)
    return message_id


def inbound_row(
    workspace_id: int, conversation_id: int, message: dict[str, Any], received_at: datetime
) -> dict[str, Any]:
    """The `messages` row of an inbound message as Meta sent it (both processing paths build it here)."""
    content = message_content(message)
    context = content.get("context") or {}
    return {
        "workspace_id": workspace_id,
        "conversation_id": conversation_id,
        "wamid": message.get("id") if isinstance(message.get("id"), str) else None,
        "direction": Direction.INBOUND.value,
        "type": content["type"],
        "content": content,
        "status": MessageStatus.RECEIVED.value,
        "timestamp": parse_timestamp(message.get("timestamp")) or received_at,
        "is_automated": False,
        "reply_to_wamid": context.get("id") if isinstance(context.get("id"), str) else None,
        "created_at": received_at,
        "updated_at": received_at,
    }


def note_inbound(conversation: Conversation, row: dict[str, Any]) -> None:
    """Move the conversation on for a newly stored inbound message (system notices neither open the
    window nor count as unread)."""
    content = row["content"]
    customer_wrote = content["type"] not in NOT_CUSTOMER_WRITING
    conversations.note_message(
        conversation, row["timestamp"], preview(content), inbound=customer_wrote, opens_window=customer_wrote
    )


def status_values(number_id: int, status: dict[str, Any], received_at: datetime) -> dict[str, Any] | None:
    """The row recording one status report, or None when it names no wamid or status."""
    wamid = status.get("id")
    name = status.get("status")
    if not isinstance(wamid, str) or not isinstance(name, str):
        return None
    callback = status.get("biz_opaque_callback_data")
    recipient = status.get("recipient_id")
    errors = [normalize_error(e) for e in status.get("errors") or [] if isinstance(e, dict)]
    return {
        "number_id": number_id,
        "wamid": wamid,
        "status": name[:16],
        "timestamp": parse_timestamp(status.get("timestamp")) or received_at,
        "recipient_id": recipient if isinstance(recipient, str) else None,
        "biz_opaque_callback_data": callback[:512] if isinstance(callback, str) else None,
        "errors": errors or None,
        "pricing": status.get("pricing") if isinstance(status.get("pricing"), dict) else None,
        "conversation": status.get("conversation") if isinstance(status.get("conversation"), dict) else None,
        "received_at": received_at,
    }


def advance(message: Message, status: str, at: datetime, errors: list[dict[str, Any]]) -> bool:
    """Apply a status to the message; only a higher rank moves it. Returns whether the status moved."""
    moves = STATUS_RANK.get(status, -1) > STATUS_RANK.get(message.status, -1)
    column = STATUS_TIME_COLUMNS.get(status)
    # A late report still fills in when that step happened, except a failure that did not apply.
    if column is not None and getattr(message, column) is None and (moves or status != MessageStatus.FAILED):
        setattr(message, column, at)
    if not moves:
        return False
    message.status = status
    if status == MessageStatus.FAILED and errors:
        first = errors[0]
        message.error_code = first["code"]
        message.error_title = first["title"][:512] or None
        message.error_details = first["details"] or first["message"] or None
        message.error_href = first["href"]
    return True


async def apply_status(
    session: AsyncSession,
    *,
    workspace_id: int,
    number_id: int,
    status: dict[str, Any],
    received_at: datetime,
) -> StatusOutcome:
    """Record a status report and advance its message; duplicates change nothing, unknown wamids wait."""
    values = status_values(number_id, status, received_at)
    if values is None:
        return StatusOutcome("invalid", None)
    status_event_id = await repository.insert_status_event(session, values)
    if status_event_id is None:
        return StatusOutcome("duplicate", None)
    message = await repository.by_wamid(session, workspace_id, values["wamid"])
    if message is None:
        return StatusOutcome("unmatched", None)
    await repository.link_status_event(session, status_event_id, message.id)
    moved = advance(message, values["status"], values["timestamp"], values["errors"] or [])
    return StatusOutcome("applied" if moved else "history_only", message.id)


async def match_pending_statuses(session: AsyncSession, message: Message, number_id: int) -> int:
    """Apply status reports the number sent before the message had its wamid; returns how many."""
    if not message.wamid:
        return 0
    pending: list[MessageStatusEvent] = await repository.unmatched_statuses(session, number_id, message.wamid)
    for event in pending:
        await repository.link_status_event(session, event.id, message.id)
        advance(message, event.status, event.timestamp, event.errors or [])
    return len(pending)


async def get_message(session: AsyncSession, workspace_id: int, message_id: int) -> Message:
    """The workspace's message; 404 for a missing one or another workspace's."""
    message = await repository.in_workspace(session, workspace_id, message_id)
    if message is None:
        raise NotFound("message not found")
    return message
