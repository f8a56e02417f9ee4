"""Queries for conversations; flushes, never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.models import Membership, User
from layanify.contacts.models import Contact
from layanify.contacts.search import contains_pattern
from layanify.conversations.models import Conversation
from layanify.crypto.content import query_tokens
from layanify.db.sql import insert_ignoring_conflicts, one_of, table_of
from layanify.messaging.models import Message


async def by_number_and_contact(
    session: AsyncSession, number_id: int, contact_id: int, *, lock: bool = False
) -> Conversation | None:
    """The conversation between a number and a contact.

    `lock` holds its row until commit (PostgreSQL; SQLite has one writer anyway) and re-reads it, so
    concurrent workers updating the same conversation never overwrite each other's counts and times.
    """
    stmt = select(Conversation).where(
        Conversation.number_id == number_id, Conversation.contact_id == contact_id
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_if_absent(session: AsyncSession, workspace_id: int, number_id: int, contact_id: int) -> None:
    """Open the conversation unless it exists (another worker may have just opened it)."""
    stmt = insert_ignoring_conflicts(session, Conversation).values(
        workspace_id=workspace_id,
        number_id=number_id,
        contact_id=contact_id,
        status="open",
        last_message_preview="",
        unread_count=0,
    )
    await session.execute(stmt)


async def in_workspace(
    session: AsyncSession, workspace_id: int, conversation_id: int, *, lock: bool = False
) -> Conversation | None:
    """The conversation, only when it belongs to the workspace (`lock`: held and re-read until commit)."""
    stmt = select(Conversation).where(
        Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


InboxRow = tuple[Conversation, Contact, User | None]


@dataclass(frozen=True)
class InboxQuery:
    """Which conversations an inbox page shows: at most one of each condition, all of them applied."""

    status: str | None = None
    assigned_user_id: int | None = None
    unassigned: bool = False
    # Matched case-insensitively against names and message text; `digits` against the number.
    text: str | None = None
    digits: str | None = None


def _search(workspace_id: int, text: str | None, digits: str | None) -> ColumnElement[bool]:
    """The contact's name or number, or any message's text or caption, contains the search.

    Encrypted messages cannot be read by the database: they match through their blind index instead,
    on whole words only (every word of the search, in any order; crypto/content.py `query_tokens`).
    """
    conditions: list[ColumnElement[bool]] = []
    if text:
        pattern = contains_pattern(text)
        matches = [
            Message.content["text"].as_string().ilike(pattern, escape="\\"),
            Message.content["caption"].as_string().ilike(pattern, escape="\\"),
        ]
        if tokens := query_tokens(workspace_id, text):
            # Tokens are hex and spaces: nothing in them needs escaping in a LIKE pattern.
            matches.append(
                and_(*(or_(*(Message.search_tokens.like(f"% {t} %") for t in sorted(w))) for w in tokens))
            )
        in_messages = exists().where(Message.conversation_id == Conversation.id, or_(*matches))
        conditions += [
            Contact.profile_name.ilike(pattern, escape="\\"),
            Contact.display_name.ilike(pattern, escape="\\"),
            in_messages,
        ]
    if digits:
        conditions.append(Contact.wa_id.like(contains_pattern(digits), escape="\\"))
    return or_(*conditions)


async def page_for_inbox(
    session: AsyncSession,
    workspace_id: int,
    query: InboxQuery,
    *,
    limit: int,
    before: tuple[datetime, int] | None,
) -> list[InboxRow]:
    """Newest activity first, with contact and assignee; `before` is the previous page's last sort key.

    Each filter has its own (workspace_id, <filter column>, last_message_at, id) index, so a page is one
    backward range scan however deep it is. The range is `last_message_at <= at` (an index bound on
    both databases); the tie on the same instant is settled by id in the filter that follows.
    """
    activity = Conversation.last_message_at
    stmt = (
        select(Conversation, Contact, User)
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(User, User.id == Conversation.assigned_user_id)
        .where(Conversation.workspace_id == workspace_id, activity.is_not(None))
    )
    if query.status is not None:
        stmt = stmt.where(Conversation.status == query.status)
    if query.assigned_user_id is not None:
        stmt = stmt.where(Conversation.assigned_user_id == query.assigned_user_id)
    if query.unassigned:
        stmt = stmt.where(Conversation.assigned_user_id.is_(None))
    if query.text or query.digits:
        stmt = stmt.where(_search(workspace_id, query.text, query.digits))
    if before is not None:
        at, conversation_id = before
        stmt = stmt.where(activity <= at, or_(activity < at, Conversation.id < conversation_id))
    stmt = stmt.order_by(activity.desc(), Conversation.id.desc()).limit(limit)
    return [(c, k, u) for c, k, u in (await session.execute(stmt)).all()]


async def with_contact_and_assignee(
    session: AsyncSession, workspace_id: int, conversation_id: int
) -> InboxRow | None:
    """One conversation of the workspace as the inbox shows it."""
    stmt = (
        select(Conversation, Contact, User)
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(User, User.id == Conversation.assigned_user_id)
        .where(Conversation.id == conversation_id, Conversation.workspace_id == workspace_id)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def is_member(session: AsyncSession, workspace_id: int, user_id: int) -> bool:
    """True when the user belongs to the workspace."""
    stmt = select(Membership.id).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
    return (await session.execute(stmt.limit(1))).first() is not None


async def insert_many_if_absent(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """Open the conversations that do not exist yet, in one statement."""
    if rows:
        connection = await session.connection()
        await connection.execute(insert_ignoring_conflicts(session, table_of(Conversation)), rows)


async def by_pairs_locked(
    session: AsyncSession, pairs: set[tuple[int, int]]
) -> dict[tuple[int, int], Conversation]:
    """Conversations by (number_id, contact_id), locked for update in id order (one query; no deadlock
    between two workers taking overlapping sets, since both lock in the same order)."""
    if not pairs:
        return {}
    stmt = (
        select(Conversation)
        .where(
            one_of(session, Conversation.contact_id, sorted({c for _, c in pairs})),
            one_of(session, Conversation.number_id, {n for n, _ in pairs}),
        )
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {(c.number_id, c.contact_id): c for c in (await session.execute(stmt)).scalars()}
    return {pair: conversation for pair, conversation in found.items() if pair in pairs}
