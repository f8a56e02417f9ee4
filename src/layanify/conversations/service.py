"""Conversation operations: open one per (number, contact), keep activity and the 24-hour window, and
the inbox's listing, assignment and closing. Every function flushes at most; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from layanify.contacts.search import phone_digits
from layanify.conversations import repository
from layanify.conversations.models import Conversation
from layanify.conversations.schemas import ConversationRead, ConversationUpdate
from layanify.db.base import utcnow
from layanify.errors import LayanifyError, NotFound, Unprocessable
from layanify.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor

SERVICE_WINDOW = timedelta(hours=24)
OPEN = "open"
CLOSED = "closed"

InboxFilter = Literal["all", "mine", "unassigned", "open", "closed"]
INBOX_FILTERS: tuple[str, ...] = get_args(InboxFilter)
MAX_SEARCH_LENGTH = 200


async def open_conversation(
    session: AsyncSession, workspace_id: int, number_id: int, contact_id: int
) -> Conversation:
    """The conversation between the number and the contact, opened if there is none; locked for update."""
    conversation = await repository.by_number_and_contact(session, number_id, contact_id, lock=True)
    if conversation is None:
        await repository.insert_if_absent(session, workspace_id, number_id, contact_id)
        conversation = await repository.by_number_and_contact(session, number_id, contact_id, lock=True)
        assert conversation is not None
    return conversation


def note_message(
    conversation: Conversation, at: datetime, preview: str, *, inbound: bool, opens_window: bool
) -> None:
    """Keep activity, unread count and the window end up to date for a newly stored message.

    Messages can be processed out of order, so every field only ever moves to a later time.
    """
    if conversation.last_message_at is None or at >= conversation.last_message_at:
        conversation.last_message_at = at
        conversation.last_message_preview = preview[:200]
    if inbound:
        conversation.unread_count = (conversation.unread_count or 0) + 1
        if conversation.status == CLOSED:  # the customer wrote again: back in the open inbox
            conversation.status = OPEN
            conversation.closed_at = None
    if opens_window and (conversation.last_inbound_at is None or at > conversation.last_inbound_at):
        conversation.last_inbound_at = at
        conversation.window_expires_at = at + SERVICE_WINDOW


ACTIVITY_FIELDS = (
    "last_message_at",
    "last_message_preview",
    "unread_count",
    "last_inbound_at",
    "window_expires_at",
)


def write_activity_together(conversations: Iterable[Conversation]) -> None:
    """Make the next flush write every activity field of these conversations, changed or not.

    The ORM groups the UPDATEs of a flush by the set of columns that changed, and only neighbours (in
    id order) share a statement. After a batch of messages those sets vary (a message in the same second
    leaves `last_message_at` as it was; a system notice moves no window), so a hundred conversations took
    ~40 UPDATE statements of a row or a few, each a round trip. Written whole, they take one.
    """
    for conversation in conversations:
        for field in ACTIVITY_FIELDS:
            flag_modified(conversation, field)


async def get_conversation(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    """The workspace's conversation; 404 for a missing one or another workspace's."""
    conversation = await repository.in_workspace(session, workspace_id, conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    return conversation


def window_open(conversation: Conversation, now: datetime) -> bool:
    """True while free-form messages may be sent: within 24 hours of the customer's last message."""
    return conversation.window_expires_at is not None and conversation.window_expires_at > now


async def read_conversation(
    session: AsyncSession, workspace_id: int, conversation_id: int
) -> ConversationRead:
    """The workspace's conversation as the inbox and the API show it; 404 for another workspace's."""
    row = await repository.with_contact_and_assignee(session, workspace_id, conversation_id)
    if row is None:
        raise NotFound("conversation not found")
    return ConversationRead.of(*row, now=utcnow())


def _inbox_query(filter: str, user_id: int, q: str | None) -> repository.InboxQuery:
    if filter not in INBOX_FILTERS:
        raise Unprocessable(
            f"unknown filter {filter!r}: use one of {', '.join(INBOX_FILTERS)}",
            details=[{"loc": ["query", "filter"], "message": "unknown filter", "type": "enum"}],
        )
    text = (q or "").strip() or None
    if text is not None and len(text) > MAX_SEARCH_LENGTH:
        raise Unprocessable(f"the search is longer than {MAX_SEARCH_LENGTH} characters")
    return repository.InboxQuery(
        status=filter if filter in (OPEN, CLOSED) else None,
        assigned_user_id=user_id if filter == "mine" else None,
        unassigned=filter == "unassigned",
        text=text,
        digits=phone_digits(text) if text else None,
    )


def _decode_activity_cursor(cursor: str) -> tuple[datetime, int]:
    at, conversation_id = decode_cursor(cursor, (datetime, int))
    if at is None or at.tzinfo is None or conversation_id is None:
        raise LayanifyError(
            "the cursor is not valid; use next_cursor from a previous page", code="invalid_cursor"
        )
    return at, conversation_id


async def list_conversations(
    session: AsyncSession,
    workspace_id: int,
    *,
    user_id: int,
    filter: str = "all",
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ConversationRead]:
    """One page of the inbox, newest activity first (conversations without a message are not listed).

    `filter`: all, mine (assigned to `user_id`), unassigned, open or closed. `q`: the contact's name,
    their number (typed any way: "+62 812-3456") or any message's text or caption; each conversation
    appears once. Keyset pagination on (last_message_at, id): no page repeats a conversation, and none
    that kept its place is skipped; one that gets a new message moves to the top of the first page.
    """
    query = _inbox_query(filter, user_id, q)
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"limit must be between 1 and {MAX_LIMIT}")
    before = _decode_activity_cursor(cursor) if cursor else None
    rows = await repository.page_for_inbox(session, workspace_id, query, limit=limit + 1, before=before)
    now = utcnow()
    items = [ConversationRead.of(*row, now=now) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.last_message_at, last.id)
    return Page[ConversationRead](data=items, next_cursor=next_cursor)


async def _locked(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    conversation = await repository.in_workspace(session, workspace_id, conversation_id, lock=True)
    if conversation is None:
        raise NotFound("conversation not found")
    return conversation


async def _assign(session: AsyncSession, conversation: Conversation, user_id: int | None) -> None:
    if user_id is not None and not await repository.is_member(session, conversation.workspace_id, user_id):
        # The same answer for a user of another workspace as for no user at all: nothing is revealed.
        raise Unprocessable(
            f"user {user_id} is not a member of this workspace",
            code="not_a_member",
            details=[{"loc": ["body", "assigned_user_id"], "message": "not a member", "type": "value"}],
        )
    conversation.assigned_user_id = user_id


def _close(conversation: Conversation) -> None:
    if conversation.status != CLOSED:
        conversation.status = CLOSED
        conversation.closed_at = utcnow()


def _reopen(conversation: Conversation) -> None:
    conversation.status = OPEN
    conversation.closed_at = None


async def assign(
    session: AsyncSession, workspace_id: int, conversation_id: int, user_id: int | None
) -> Conversation:
    """Give the conversation to a member of the workspace (None: unassign); 422 for anyone else."""
    conversation = await _locked(session, workspace_id, conversation_id)
    await _assign(session, conversation, user_id)
    await session.flush()
    return conversation


async def close(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    """Close the conversation (closing a closed one keeps its closed_at); the customer's next message
    reopens it."""
    conversation = await _locked(session, workspace_id, conversation_id)
    _close(conversation)
    await session.flush()
    return conversation


async def reopen(session: AsyncSession, workspace_id: int, conversation_id: int) -> Conversation:
    """Put the conversation back in the open inbox."""
    conversation = await _locked(session, workspace_id, conversation_id)
    _reopen(conversation)
    await session.flush()
    return conversation


async def update_conversation(
    session: AsyncSession, workspace_id: int, conversation_id: int, update: ConversationUpdate
) -> Conversation:
    """Apply an agent's changes (assignee, status, auto-replies) at once; only the fields given change."""
    conversation = await _locked(session, workspace_id, conversation_id)
    if "assigned_user_id" in update.model_fields_set:
        await _assign(session, conversation, update.assigned_user_id)
    if update.status == CLOSED:
        _close(conversation)
    elif update.status == OPEN:
        _reopen(conversation)
    if update.auto_reply_enabled is not None:
        conversation.auto_reply_enabled = update.auto_reply_enabled
    await session.flush()
    return conversation
