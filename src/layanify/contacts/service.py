"""Contact operations: upsert from Meta's profile, and what agents keep about a customer."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts import repository
from layanify.contacts.models import Contact
from layanify.contacts.schemas import ContactRead
from layanify.contacts.search import phone_digits
from layanify.errors import NotFound, Unprocessable
from layanify.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor

MAX_NOTES = 5000
MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_DISPLAY_NAME = 256
MAX_SEARCH_LENGTH = 200


class Keep(enum.Enum):
    """Marks a field the caller leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


async def upsert_contact(
    session: AsyncSession,
    workspace_id: int,
    wa_id: str,
    *,
    profile_name: str = "",
    user_id: str | None = None,
    seen_at: datetime | None = None,
) -> Contact:
    """The workspace's contact for wa_id, created if new.

    The profile (name, business-scoped user id) follows the newest message Meta timed (`seen_at`), so a
    redelivered or late older message never puts back a name or id the customer has since changed.
    """
    contact = await repository.by_wa_id(session, workspace_id, wa_id)
    if contact is None:
        await repository.insert_if_absent(session, workspace_id, wa_id, profile_name)
        contact = await repository.by_wa_id(session, workspace_id, wa_id)
        assert contact is not None
    apply_profile(contact, profile_name=profile_name, user_id=user_id, seen_at=seen_at)
    return contact


def apply_profile(
    contact: Contact, *, profile_name: str, user_id: str | None, seen_at: datetime | None
) -> None:
    """Take the profile Meta sent with a message, unless a newer message already gave us one."""
    if seen_at is not None:
        if contact.profile_seen_at is not None and seen_at < contact.profile_seen_at:
            return
        contact.profile_seen_at = seen_at
    if profile_name and contact.profile_name != profile_name:
        contact.profile_name = profile_name
    if user_id and contact.user_id != user_id:
        contact.user_id = user_id


async def set_marketing_preference(contact: Contact, *, opted_out: bool, at: datetime) -> None:
    """Record the customer's marketing stop/resume preference, ignoring older news than what we have."""
    if contact.marketing_preference_at is not None and contact.marketing_preference_at > at:
        return
    contact.marketing_opt_out = opted_out
    contact.marketing_preference_at = at


async def get_contact(session: AsyncSession, workspace_id: int, contact_id: int) -> Contact:
    """The workspace's contact; 404 for a missing one or another workspace's."""
    contact = await repository.in_workspace(session, workspace_id, contact_id)
    if contact is None:
        raise NotFound("contact not found")
    return contact


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, details=[{"loc": ["body", field], "message": message, "type": "value"}])


def clean_tags(tags: Sequence[str]) -> list[str]:
    """Tags as stored: trimmed, the first spelling kept of those equal ignoring case; 422 beyond limits."""
    if isinstance(tags, str):  # a str is a sequence of one-letter tags: surely not what was meant
        raise _invalid("tags", "tags must be a list of strings")
    cleaned: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(tags, start=1):
        tag = raw.strip()
        if not 1 <= len(tag) <= MAX_TAG_LENGTH:
            raise _invalid(
                "tags", f"tag {position} must be 1 to {MAX_TAG_LENGTH} characters (it has {len(tag)})"
            )
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise _invalid("tags", f"a contact has at most {MAX_TAGS} tags (got {len(cleaned)})")
    return cleaned


def _optional_text(field: str, value: str | None, limit: int) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise _invalid(field, f"{field} is at most {limit:,} characters (got {len(text):,})")
    return text or None


async def update_contact(
    session: AsyncSession,
    workspace_id: int,
    contact_id: int,
    *,
    display_name: str | Keep | None = KEEP,
    notes: str | Keep | None = KEEP,
    tags: Sequence[str] | Keep = KEEP,
) -> Contact:
    """Change what agents keep about a customer; fields left at KEEP stay. "" or None clears a name or
    notes. 404 for another workspace's contact; 422 (nothing changed) when a value breaks a limit."""
    contact = await get_contact(session, workspace_id, contact_id)
    changes: dict[str, Any] = {}
    if not isinstance(display_name, Keep):
        changes["display_name"] = _optional_text("display_name", display_name, MAX_DISPLAY_NAME)
    if not isinstance(notes, Keep):
        changes["notes"] = _optional_text("notes", notes, MAX_NOTES)
    if not isinstance(tags, Keep):
        changes["tags"] = clean_tags(tags)
    for field, value in changes.items():
        setattr(contact, field, value)
    await session.flush()
    return contact


async def list_contacts(
    session: AsyncSession,
    workspace_id: int,
    *,
    q: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ContactRead]:
    """The workspace's contacts, oldest first; `q` matches a name or the number (typed any way), `tag`
    a tag ignoring case."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"limit must be between 1 and {MAX_LIMIT}")
    text = (q or "").strip() or None
    if text is not None and len(text) > MAX_SEARCH_LENGTH:
        raise Unprocessable(f"the search is longer than {MAX_SEARCH_LENGTH} characters")
    after_id = decode_cursor(cursor, (int,))[0] if cursor else None
    rows = await repository.page(
        session,
        workspace_id,
        limit=limit + 1,
        after_id=after_id,
        text=text,
        digits=phone_digits(text) if text else None,
        tag=(tag or "").strip() or None,
    )
    items = [ContactRead.model_validate(c) for c in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[ContactRead](data=items, next_cursor=next_cursor)
