"""What a number does on its own: auto-replies, read receipts and the typing indicator.

`react_to_inbound` runs in the webhook worker's unit of work, right after the messages are stored, so
an auto-reply is queued exactly once per stored message (a redelivered message is not stored again,
and a rolled-back batch queues nothing). Replies go through the same outbox as agents' messages,
marked `is_automated`; read and typing calls are `ChatAction`s sent by `automation.tasks.ActionWorker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.automation import repository
from layanify.automation.models import NumberSettings
from layanify.automation.rules import first_match
from layanify.automation.schemas import TYPING_MAX_SECONDS, BehaviourSettings, KeywordRule, Reply, merged
from layanify.contacts.models import Contact
from layanify.conversations import service as conversations
from layanify.conversations.models import Conversation
from layanify.db.base import utcnow
from layanify.errors import Conflict, Unprocessable
from layanify.messaging import service as messaging
from layanify.messaging.models import ChatAction, ChatActionKind, Message
from layanify.numbers.models import WhatsAppNumber
from layanify.observability import get_logger

log = get_logger(__name__)

# Customer messages an auto-reply may answer: not reactions, system notices or unsupported content.
ANSWERED_TYPES = frozenset(
    {
        "text",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "order",
    }
)
# A message processed this long after it was written (a backlog, a replayed event) gets no auto-reply:
# an answer hours late confuses more than it helps.
MAX_REPLY_AGE = timedelta(hours=1)
# A conversation is new when the customer had not written for this long (Meta's service window).
NEW_CONVERSATION_GAP = timedelta(hours=24)
# With the typing indicator on, the reply waits at least this long after the indicator is due, so the
# customer sees "typing…" first; the indicator starts at most this long before the reply.
MIN_TYPING_LEAD = timedelta(seconds=2)
TYPING_LEAD = timedelta(seconds=TYPING_MAX_SECONDS - 5)
DEFAULTS = BehaviourSettings()


def parse_settings(data: dict[str, Any] | None) -> BehaviourSettings:
    """Stored settings as the schema; the defaults for a number that never saved any."""
    return DEFAULTS if not data else BehaviourSettings.model_validate(data)


def _validated(data: dict[str, Any]) -> BehaviourSettings:
    try:
        return BehaviourSettings.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "loc": ["settings", *err.get("loc", ())],
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors(include_url=False)
        ]
        first = details[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "settings"
        raise Unprocessable(
            f"the settings are not valid: {where}: {first['message']}", details=details
        ) from exc


async def get_settings(session: AsyncSession, number: WhatsAppNumber) -> BehaviourSettings:
    """A number's behaviour settings (the defaults until some are saved)."""
    stored = await repository.settings_of(session, [number.id])
    return parse_settings(stored.get(number.id))


async def save_settings(
    session: AsyncSession,
    number: WhatsAppNumber,
    data: dict[str, Any],
    *,
    user_id: int | None,
    partial: bool,
) -> BehaviourSettings:
    """Replace (or, `partial`, merge into) a number's settings; a 422 naming the field when invalid.

    They apply to the next message processed: the worker reads them per batch.
    """
    if not isinstance(data, dict):
        raise Unprocessable("the settings must be a JSON object")
    row = await repository.settings_row(session, number.id)
    current = row.settings if row is not None else DEFAULTS.model_dump(mode="json")
    settings = _validated(merged(current, data) if partial else data)
    stored = settings.model_dump(mode="json")
    if row is None:
        session.add(
            NumberSettings(
                number_id=number.id,
                workspace_id=number.workspace_id,
                settings=stored,
                updated_by_user_id=user_id,
            )
        )
    else:
        row.settings = stored
        row.updated_by_user_id = user_id
    await session.flush()
    log.info("number_settings_saved", number_id=number.id, user_id=user_id)
    return settings


@dataclass
class Reaction:
    """What automation did for a batch of inbound messages (counted in the worker's log line)."""

    replies: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    read_calls: int = 0
    typing_calls: int = 0

    def skip(self, reason: str) -> None:
        """Count a message that got no auto-reply, by reason."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _text_of(message: Message) -> str:
    content = message.content or {}
    text = content.get("text") or content.get("caption") or ""
    return text if isinstance(text, str) else ""


async def react_to_inbound(
    session: AsyncSession, message_ids: list[int], *, now: datetime | None = None
) -> Reaction:
    """Apply each number's behaviour to newly stored inbound messages: queue auto-replies (and their
    typing indicators) and, with read receipts on arrival, one mark-as-read per conversation."""
    reaction = Reaction()
    if not message_ids:
        return reaction
    now = now or utcnow()
    stored = await repository.settings_for_messages(session, message_ids)
    if not stored:
        return reaction  # no number here has saved settings: the defaults do nothing on arrival
    rows = await repository.inbound_with_conversations(session, message_ids)
    settings = {number_id: parse_settings(data) for number_id, data in stored.items()}
    latest: dict[int, tuple[Message, Conversation]] = {}
    typed: set[int] = set()
    for message, conversation in rows:
        behaviour = settings.get(conversation.number_id)
        if behaviour is None or message.type == "system":
            continue
        latest[conversation.id] = (message, conversation)
        if behaviour.auto_reply.enabled:
            reply = await _auto_reply(session, behaviour, message, conversation, now, reaction)
            if reply is not None and behaviour.typing_indicator:
                typed.add(conversation.id)
    for message, conversation in latest.values():
        behaviour = settings[conversation.number_id]
        if behaviour.read_receipts == "on_arrival" and conversation.id not in typed:
            await request_read(session, conversation, message, now)
            reaction.read_calls += 1
    reaction.typing_calls = len(typed)
    return reaction


async def _auto_reply(
    session: AsyncSession,
    behaviour: BehaviourSettings,
    message: Message,
    conversation: Conversation,
    now: datetime,
    reaction: Reaction,
) -> Message | None:
    """Queue the one automated answer this message deserves, if any."""
    if message.type not in ANSWERED_TYPES:
        reaction.skip("not_answered_type")
        return None
    if not conversation.auto_reply_enabled:
        reaction.skip("off_for_conversation")
        return None
    # The customer said STOP (this very message, or earlier) or stopped them at Meta: nothing automated.
    contact = await session.get(Contact, conversation.contact_id)  # usually in the identity map
    if contact is not None and contact.marketing_opt_out:
        reaction.skip("opted_out")
        return None
    if now - message.timestamp > MAX_REPLY_AGE:
        reaction.skip("too_old")
        return None
    chosen = await _choose(session, behaviour, message)
    if chosen is None:
        reaction.skip("no_rule")
        return None
    rule, reply = chosen
    if await repository.agent_answered_since(session, conversation.id, message.timestamp):
        reaction.skip("agent_answered")
        return None
    cooldown = timedelta(minutes=behaviour.auto_reply.cooldown_minutes)
    if not await repository.take_cooldown(
        session,
        workspace_id=conversation.workspace_id,
        number_id=conversation.number_id,
        contact_id=conversation.contact_id,
        rule=rule,
        now=now,
        not_since=now - cooldown,
    ):
        reaction.skip("cooldown")
        return None
    delay = timedelta(seconds=behaviour.reply_delay_seconds)
    send_at = now + (max(delay, MIN_TYPING_LEAD) if behaviour.typing_indicator else delay)
    try:
        async with session.begin_nested():
            queued = await messaging.queue_message(
                session,
                workspace_id=conversation.workspace_id,
                user_id=None,
                content=reply.model_dump(mode="json", exclude_none=True),
                default_region="ID",
                conversation_id=conversation.id,
                is_automated=True,
                now=now,
                send_at=send_at,
            )
    except (Conflict, Unprocessable) as exc:
        # The number cannot send now, or the window closed: no auto-reply, and the cooldown stays taken
        # so the next message does not retry a reply that cannot go out.
        log.info("auto_reply_not_queued", message_id=message.id, rule=rule, reason=exc.code)
        reaction.skip(exc.code or "refused")
        return None
    await repository.note_reply_message(
        session,
        number_id=conversation.number_id,
        contact_id=conversation.contact_id,
        rule=rule,
        message_id=queued.id,
    )
    if behaviour.typing_indicator and message.wamid:
        session.add(
            _chat_action(
                conversation,
                ChatActionKind.TYPING,
                message,
                max(now, send_at - TYPING_LEAD),
                reply_message_id=queued.id,
            )
        )
    reaction.replies.append(queued.id)
    log.info("auto_reply_queued", message_id=message.id, reply_id=queued.id, rule=rule)
    return queued


async def _choose(
    session: AsyncSession, behaviour: BehaviourSettings, message: Message
) -> tuple[str, Reply] | None:
    """The rule that answers: a keyword rule first, else the away message outside business hours, else
    the greeting when the message starts a new conversation."""
    auto = behaviour.auto_reply
    text = _text_of(message)
    if text:
        rule: KeywordRule | None = first_match(auto.keywords, text)
        if rule is not None:
            return f"keyword:{rule.id}", rule.reply
    if (
        auto.away.enabled
        and auto.away.reply is not None
        and not behaviour.business_hours.is_open(message.timestamp)
    ):
        return "away", auto.away.reply
    if auto.greeting.enabled and auto.greeting.reply is not None:
        previous = await repository.previous_inbound_at(session, message)
        if previous is None or message.timestamp - previous >= NEW_CONVERSATION_GAP:
            return "greeting", auto.greeting.reply
    return None


def _chat_action(
    conversation: Conversation,
    kind: ChatActionKind,
    message: Message,
    due_at: datetime,
    *,
    reply_message_id: int | None = None,
) -> ChatAction:
    """A mark-as-read or typing call about `message` (which has a wamid), due at `due_at`."""
    return ChatAction(
        workspace_id=conversation.workspace_id,
        number_id=conversation.number_id,
        conversation_id=conversation.id,
        kind=kind.value,
        wamid=message.wamid or "",
        message_id=message.id,
        reply_message_id=reply_message_id,
        status="pending",
        due_at=due_at,
        attempts=0,
    )


async def request_read(
    session: AsyncSession, conversation: Conversation, message: Message, now: datetime
) -> None:
    """Mark the conversation read at Meta up to `message`: one pending call per conversation, moved
    forward to the newest message instead of adding another."""
    if not message.wamid:
        return
    pending = await repository.pending_read(session, conversation.id)
    if pending is not None:
        pending.wamid = message.wamid
        pending.message_id = message.id
        return
    session.add(_chat_action(conversation, ChatActionKind.READ, message, now))
    await session.flush()


async def conversation_opened(
    session: AsyncSession, workspace_id: int, conversation_id: int, *, now: datetime | None = None
) -> tuple[Conversation, bool]:
    """An agent opened the conversation: its unread count clears, and with read receipts "when an agent
    opens the conversation" the customer's messages are marked read at Meta. Returns the conversation
    and whether a mark-as-read call was queued."""
    now = now or utcnow()
    conversation = await conversations.get_conversation(session, workspace_id, conversation_id)
    conversation.unread_count = 0
    stored = await repository.settings_of(session, [conversation.number_id])
    behaviour = parse_settings(stored.get(conversation.number_id))
    if behaviour.read_receipts != "on_open":
        return conversation, False
    latest = await repository.latest_unread_inbound(session, conversation.id)
    if latest is None:
        return conversation, False
    await request_read(session, conversation, latest, now)
    return conversation, True


async def agent_typing(
    session: AsyncSession, workspace_id: int, conversation_id: int, *, now: datetime | None = None
) -> bool:
    """An agent is composing a reply: show the customer "typing…" when the number's typing indicator is
    on. Once per 20 seconds per conversation at most (Meta shows it up to 25 s); True when queued."""
    now = now or utcnow()
    conversation = await conversations.get_conversation(session, workspace_id, conversation_id)
    stored = await repository.settings_of(session, [conversation.number_id])
    if not parse_settings(stored.get(conversation.number_id)).typing_indicator:
        return False
    if await repository.typing_since(session, conversation.id, now - TYPING_LEAD):
        return False
    latest = await repository.latest_inbound(session, conversation.id)
    if latest is None or latest.wamid is None or now - latest.timestamp > conversations.SERVICE_WINDOW:
        return False  # nothing to answer, or the window is closed (only a template can go out)
    session.add(_chat_action(conversation, ChatActionKind.TYPING, latest, now))
    await session.flush()
    return True


async def set_conversation_auto_reply(
    session: AsyncSession, workspace_id: int, conversation_id: int, enabled: bool
) -> Conversation:
    """Switch the number's auto-replies on or off for one conversation."""
    conversation = await conversations.get_conversation(session, workspace_id, conversation_id)
    conversation.auto_reply_enabled = enabled
    await session.flush()
    return conversation
