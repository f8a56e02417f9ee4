"""Opt-out keywords: a customer who writes STOP (or BERHENTI …) stops automated and marketing messages.

Both webhook processing paths call `keyword_of` on every newly stored inbound message (one length check
and at most one set lookup), and `apply_keyword` for the few that carry a keyword. The opt-out is the
contact's `marketing_opt_out`, the same flag Meta's `user_preferences` webhook sets: the customer's most
recent word, by Meta's time, wins whichever way it came.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.contacts.models import Contact
from layanify.contacts.service import set_marketing_preference
from layanify.db.base import utcnow
from layanify.messaging import repository as messages_repository
from layanify.numbers.models import MessageTemplate

STOP_WORDS = frozenset({"stop", "berhenti", "unsubscribe", "batal langganan"})
START_WORDS = frozenset({"start", "mulai"})
# The quick-reply button payloads of a template's opt-out and opt-in buttons.
STOP_PAYLOADS = frozenset({"STOP"})
START_PAYLOADS = frozenset({"START"})
MARKETING = "MARKETING"
_LONGEST = max(len(word) for word in STOP_WORDS | START_WORDS)
# Room for the whitespace around a keyword; anything longer is a sentence, not a keyword.
_MAX_TEXT = _LONGEST + 16


def keyword_of(message: dict[str, Any]) -> bool | None:
    """True when an inbound message (Meta's shape) opts out, False when it opts back in, else None.

    A text counts only when it is exactly one of the words (ignoring case and surrounding spaces), so
    "stop sending me the old catalogue please" is an ordinary message.
    """
    kind = message.get("type")
    if kind == "text":
        text = message.get("text")
        body = text.get("body") if isinstance(text, dict) else None
        if not isinstance(body, str) or len(body) > _MAX_TEXT:
            return None
        word = " ".join(body.split()).casefold()
        if word in STOP_WORDS:
            return True
        return False if word in START_WORDS else None
    if kind == "button":
        button = message.get("button")
        payload = button.get("payload") if isinstance(button, dict) else None
        if not isinstance(payload, str) or len(payload) > _MAX_TEXT:
            return None
        payload = payload.strip().upper()
        if payload in STOP_PAYLOADS:
            return True
        return False if payload in START_PAYLOADS else None
    return None


async def apply_keyword(
    session: AsyncSession, contact: Contact, conversation_id: int, *, opted_out: bool, at: datetime
) -> None:
    """Record the customer's STOP or START (ignored when a newer preference is already recorded). A STOP
    also cancels the conversation's automated replies still waiting for their delay."""
    await set_marketing_preference(contact, opted_out=opted_out, at=at)
    if opted_out and contact.marketing_opt_out:
        await messages_repository.cancel_automated(session, conversation_id, at=utcnow())


async def is_marketing_template(session: AsyncSession, workspace_id: int, name: str, language: str) -> bool:
    """True when the workspace's template of that name and language is in Meta's MARKETING category.

    A template no webhook has described yet (category unknown) is not treated as marketing.
    """
    stmt = (
        select(MessageTemplate.id)
        .where(
            MessageTemplate.workspace_id == workspace_id,
            MessageTemplate.name == name,
            MessageTemplate.language == language,
            MessageTemplate.category == MARKETING,
        )
        .limit(1)
    )
    return (await session.execute(stmt)).first() is not None
