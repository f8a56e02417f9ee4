"""Contact operations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts import repository
from layanify.contacts.models import Contact
from layanify.errors import NotFound


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
