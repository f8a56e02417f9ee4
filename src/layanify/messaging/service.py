"""Message operations: store inbound messages once, advance statuses monotonically by rank."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from layanify.contacts import service as contacts
from layanify.conversations import service as conversations
from layanify.conversations.models import Conversation
from layanify.db.base import utcnow
from layanify.errors import Conflict, NotFound, Unprocessable
from layanify.messaging import repository
from layanify.messaging.models import STATUS_RANK, Direction, Message, MessageStatus, MessageStatusEvent
from layanify.numbers import repository as numbers_repository
from layanify.numbers.models import NumberStatus, WhatsAppNumber
from layanify.privacy.optout import is_marketing_template
from layanify.whatsapp.errors import error_for_code
from layanify.whatsapp.outbound import OutboundContent, TemplateContent, content_preview, parse_content
from layanify.whatsapp.payloads import (
    WA_ID_MAX,
    WAMID_MAX,
    fitting_id,
    message_content,
    normalize_error,
    parse_timestamp,
    preview,
)

# Types that are not a customer writing to us: they neither open the window nor count as unread.
NOT_CUSTOMER_WRITING = frozenset({"system"})
STATUS_TIME_COLUMNS = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "played": "played_at",
    "failed": "failed_at",
}
# Every column `advance` may set.
STATUS_FIELDS = (
    "status",
    *STATUS_TIME_COLUMNS.values(),
    "error_code",
    "error_title",
    "error_details",
    "error_href",
    "error_action",
)


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
        "reply_to_wamid": fitting_id(context.get("id"), WAMID_MAX),  # `content.context` keeps it whole
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
        "recipient_id": fitting_id(recipient, WA_ID_MAX),
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
        message.error_action = error_for_code(first["code"]).action.value if first["code"] else None
    return True


def write_statuses_together(messages: Iterable[Message]) -> None:
    """Make the next flush write every status column of the messages a status changed, so it sends
    one UPDATE for all of them (as `conversations.write_activity_together`, for the same reason:
    sent, delivered and read reports change different columns, and the ORM groups by columns)."""
    for message in messages:
        if inspect(message).modified:
            for field in STATUS_FIELDS:
                flag_modified(message, field)


# Our message id rides along in `biz_opaque_callback_data`, so a send whose response was lost is
# matched to its message by the status webhooks instead of being sent again.
CALLBACK_PREFIX = "layanify:"


def callback_data(message_id: int) -> str:
    """What the outbox puts in `biz_opaque_callback_data` for this message."""
    return f"{CALLBACK_PREFIX}{message_id}"


def callback_message_id(value: str | None) -> int | None:
    """Our message id from an echoed `biz_opaque_callback_data`, when it is ours."""
    if not value or not value.startswith(CALLBACK_PREFIX):
        return None
    digits = value[len(CALLBACK_PREFIX) :]
    return int(digits) if digits.isdigit() and len(digits) < 19 else None


async def match_by_callback(
    session: AsyncSession, *, workspace_id: int, number_id: int, values: dict[str, Any]
) -> Message | None:
    """The outbound message a status names by callback data when its wamid is not stored yet (the
    send's response was lost or is still on its way); the wamid is stored on it."""
    message_id = callback_message_id(values.get("biz_opaque_callback_data"))
    if message_id is None:
        return None
    message = await repository.by_callback(session, message_id, number_id)
    if message is None or message.workspace_id != workspace_id:
        return None
    if message.wamid is not None and message.wamid != values["wamid"]:
        return None
    if message.wamid is None:
        message.wamid = values["wamid"]
        if values.get("recipient_id"):
            message.recipient = values["recipient_id"]
        message.lease_expires_at = None
        message.next_attempt_at = None
        if message.status in (MessageStatus.QUEUED, MessageStatus.SENDING):
            # Meta has it: an earlier attempt's error no longer describes the message.
            message.error_code = message.error_title = message.error_details = None
            message.error_href = message.error_action = None
        await session.flush()
    return message


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
        message = await match_by_callback(
            session, workspace_id=workspace_id, number_id=number_id, values=values
        )
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


async def recent_messages(session: AsyncSession, conversation_id: int, *, limit: int) -> list[Message]:
    """The conversation's newest `limit` messages, oldest first (what the conversation view shows)."""
    return await repository.newest_in_conversation(session, conversation_id, limit=limit)


async def get_message(session: AsyncSession, workspace_id: int, message_id: int) -> Message:
    """The workspace's message; 404 for a missing one or another workspace's."""
    message = await repository.in_workspace(session, workspace_id, message_id)
    if message is None:
        raise NotFound("message not found")
    return message


# --- Sending -------------------------------------------------------------------------------------
# Types Meta delivers only inside the customer-service window; a template may open a conversation.
WINDOW_FREE_TYPES = frozenset({"template"})


def recipient_wa_id(to: str, default_region: str) -> str:
    """The digits Meta expects in `to`: "+62 812-3456-7890", "081234567890" (local, in the default
    region) and "6281234567890" all give "6281234567890"; anything else is a 422."""
    raw = to.strip()
    if not raw or len(raw) > 32 or not any(ch.isdigit() for ch in raw):
        raise Unprocessable("`to` must be a phone number such as +6281234567890", code="invalid_recipient")
    if raw.startswith("+"):
        candidate = raw
    elif raw.startswith("0"):
        candidate = raw  # a local number of the workspace's country
    else:
        candidate = "+" + raw
    try:
        parsed = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as exc:
        raise Unprocessable(f"`to` is not a phone number: {exc}", code="invalid_recipient") from exc
    # Possible, not "valid": numbering plans lag behind real allocations, and Meta is the judge.
    if not phonenumbers.is_possible_number(parsed):
        raise Unprocessable(
            "`to` is not a possible phone number (check the country code and length)",
            code="invalid_recipient",
        )
    return f"{parsed.country_code}{parsed.national_number}"


def validated_content(data: dict[str, Any]) -> OutboundContent:
    """The outbound content, or a 422 that says which field is wrong and why."""
    try:
        return parse_content(data)
    except ValidationError as exc:
        details = [
            {
                "loc": ["content", *err.get("loc", ())],
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors(include_url=False)
        ]
        raise Unprocessable("the message content is not valid; see details", details=details) from exc


def number_problem(number: WhatsAppNumber) -> str | None:
    """Why the number cannot send now, in words for the user; None when it can."""
    if number.deleted_at is not None:
        return "this number was removed"
    if not number.access_token_encrypted:
        return "this number has no access token; add one in the number's settings"
    if number.status == NumberStatus.REJECTED:
        return "this number was rejected; test the connection after fixing it"
    if number.connection_state == "disconnected":
        return (
            "this number is disconnected: "
            + (number.connection_error or "its access token is invalid or expired")
            + " Update the token and test the connection; queued messages resume then."
        )
    return None


async def queue_message(
    session: AsyncSession,
    *,
    workspace_id: int,
    user_id: int | None,
    content: dict[str, Any],
    default_region: str,
    number_id: int | None = None,
    to: str | None = None,
    conversation_id: int | None = None,
    reply_to: int | str | None = None,
    is_automated: bool = False,
    now: datetime | None = None,
    send_at: datetime | None = None,
) -> Message:
    """Validate and store an outgoing message as `queued` (the caller's commit hands it to the outbox).

    Either a conversation, or a number and a recipient, names where it goes. Outside the 24-hour
    window only a template may be sent: anything else is refused here, before anything is sent.
    `send_at` holds it in the outbox until then (automated replies' delay). A message from an agent
    cancels the conversation's automated replies that are still waiting.
    """
    now = now or utcnow()
    body = validated_content(content)
    if conversation_id is not None:
        conversation = await conversations.get_conversation(session, workspace_id, conversation_id)
        number = await numbers_repository.in_workspace(session, workspace_id, conversation.number_id)
        if number is None:
            raise Conflict("this conversation's number was removed", code="number_not_connected")
        contact = await contacts.get_contact(session, workspace_id, conversation.contact_id)
        conversation = await conversations.open_conversation(session, workspace_id, number.id, contact.id)
    else:
        if number_id is None or to is None:
            raise Unprocessable("give `number_id` and `to`, or send within a conversation")
        number = await numbers_repository.in_workspace(session, workspace_id, number_id)
        if number is None:
            raise NotFound("number not found")
        wa_id = recipient_wa_id(to, default_region)
        contact = await contacts.upsert_contact(session, workspace_id, wa_id)
        conversation = await conversations.open_conversation(session, workspace_id, number.id, contact.id)
    problem = number_problem(number)
    if problem is not None:
        raise Conflict(problem, code="number_not_connected")
    if (
        isinstance(body, TemplateContent)
        and contact.marketing_opt_out
        and await is_marketing_template(session, workspace_id, body.name, body.language)
    ):
        raise Conflict(
            f"This customer opted out of marketing messages (they wrote STOP or stopped them in WhatsApp), "
            f"so the marketing template {body.name!r} was not sent. Replies in an open conversation and "
            "utility templates can still be sent; the customer can write START to opt back in.",
            code="opted_out",
        )
    if body.type not in WINDOW_FREE_TYPES and not conversations.window_open(conversation, now):
        raise Conflict(
            "More than 24 hours have passed since this customer's last message (or they never wrote): "
            "WhatsApp only delivers a template now. Send an approved template to reopen the conversation.",
            code="template_required",
        )
    reply_to_wamid = await _reply_target(session, workspace_id, conversation.id, reply_to)
    stored = body.model_dump(mode="json", exclude_none=True)
    message = Message(
        workspace_id=workspace_id,
        conversation_id=conversation.id,
        number_id=number.id,
        recipient=contact.wa_id,
        direction=Direction.OUTBOUND.value,
        type=body.type,
        content=stored,
        status=MessageStatus.QUEUED.value,
        timestamp=now,
        is_automated=is_automated,
        reply_to_wamid=reply_to_wamid,
        sent_by_user_id=user_id,
        attempts=0,
        next_attempt_at=max(send_at, now) if send_at is not None else now,
    )
    if not is_automated:
        await repository.cancel_automated(session, conversation.id, at=now)
    session.add(message)
    conversations.note_message(conversation, now, content_preview(body), inbound=False, opens_window=False)
    await session.flush()
    return message


async def _reply_target(
    session: AsyncSession, workspace_id: int, conversation_id: int, reply_to: int | str | None
) -> str | None:
    """The wamid a reply quotes: our message id in the same conversation, or a wamid as Meta gave it."""
    if reply_to is None:
        return None
    if isinstance(reply_to, str) and reply_to.startswith("wamid."):
        return reply_to[:256]
    try:
        target_id = int(reply_to)
    except ValueError as exc:
        raise Unprocessable("`reply_to` must be a message id or a wamid", code="invalid_reply_to") from exc
    target = await repository.in_workspace(session, workspace_id, target_id)
    if target is None or target.conversation_id != conversation_id:
        raise NotFound("the message to reply to is not in this conversation")
    if not target.wamid:
        raise Conflict("the message to reply to has not been sent yet", code="invalid_reply_to")
    return target.wamid


async def match_statuses_for_sent(session: AsyncSession, wamids: list[str]) -> int:
    """Apply status reports that arrived before their just-recorded sends had a wamid."""
    pending = await repository.unmatched_for_wamids(session, wamids)
    if not pending:
        return 0
    messages = await repository.by_wamids_locked(session, {e.wamid for e in pending})
    matched = 0
    for event in pending:
        message = messages.get(event.wamid)
        if message is None or message.number_id != event.number_id:
            continue
        await repository.link_status_event(session, event.id, message.id)
        advance(message, event.status, event.timestamp, event.errors or [])
        matched += 1
    return matched


async def fail_queued_of_removed_number(session: AsyncSession, number_id: int) -> int:
    """A removed number sends nothing more: its queued messages fail with the reason (none stay queued)."""
    return await repository.fail_queued_of_number(
        session,
        number_id,
        at=utcnow(),
        reason="The number was removed before this message was sent. Add the number again and resend it.",
    )
