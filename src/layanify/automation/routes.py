"""Behaviour settings per number, and the conversation actions automation reacts to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.dependencies import CurrentPrincipal, OwnerPrincipal, SessionDep
from layanify.automation import service
from layanify.automation.schemas import BehaviourSettings
from layanify.conversations import service as conversations
from layanify.conversations.schemas import ConversationRead
from layanify.db.session import after_commit_call
from layanify.numbers import service as numbers
from layanify.pagination import ObjectId

router = APIRouter(tags=["behaviour"])


class OpenedConversation(BaseModel):
    """The conversation after an agent opened it, and whether the customer will see it read."""

    conversation: ConversationRead
    read_receipt_queued: bool


def _wake_senders(request: Request, session: AsyncSession) -> None:
    after_commit_call(session, getattr(request.app.state, "wake_automation", None))


@router.get("/api/v1/numbers/{number_id}/settings", response_model_by_alias=False)
async def get_settings(
    number_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> BehaviourSettings:
    """The number's behaviour: business hours, auto-reply, read receipts, typing indicator, reply delay."""
    number = await numbers.get_number(session, principal.workspace_id, number_id)
    return await service.get_settings(session, number)


@router.put("/api/v1/numbers/{number_id}/settings", response_model_by_alias=False)
async def replace_settings(
    number_id: ObjectId,
    principal: OwnerPrincipal,
    session: SessionDep,
    data: dict[str, Any] = Body(openapi_examples={"default": {"value": BehaviourSettings().model_dump()}}),
) -> BehaviourSettings:
    """Replace the number's settings (owners only); omitted fields take their defaults. 422 names the
    field at fault (bad timezone, overlapping ranges, invalid regex, delay out of range, …)."""
    number = await numbers.get_number(session, principal.workspace_id, number_id, lock=True)
    return await service.save_settings(session, number, data, user_id=principal.user_id, partial=False)


@router.patch("/api/v1/numbers/{number_id}/settings", response_model_by_alias=False)
async def update_settings(
    number_id: ObjectId, principal: OwnerPrincipal, session: SessionDep, data: dict[str, Any] = Body()
) -> BehaviourSettings:
    """Change some settings (owners only): objects merge key by key, lists and replies are replaced."""
    number = await numbers.get_number(session, principal.workspace_id, number_id, lock=True)
    return await service.save_settings(session, number, data, user_id=principal.user_id, partial=True)


@router.post("/api/v1/conversations/{conversation_id}/read")
async def open_conversation(
    request: Request, conversation_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> OpenedConversation:
    """An agent opened the conversation: its unread count clears and, when the number's read receipts
    are "when an agent opens the conversation", one mark-as-read call is queued for it."""
    conversation, queued = await service.conversation_opened(session, principal.workspace_id, conversation_id)
    if queued:
        _wake_senders(request, session)
    return OpenedConversation(
        conversation=await conversations.read_conversation(session, principal.workspace_id, conversation.id),
        read_receipt_queued=queued,
    )


class TypingShown(BaseModel):
    """Whether a typing indicator was queued for the customer."""

    queued: bool


@router.post("/api/v1/conversations/{conversation_id}/typing")
async def agent_typing(
    request: Request, conversation_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> TypingShown:
    """An agent is composing a reply: the customer sees "typing…" (when the number's typing indicator is
    on, at most once per 20 seconds; it also marks their messages read, as Meta's call does)."""
    queued = await service.agent_typing(session, principal.workspace_id, conversation_id)
    if queued:
        _wake_senders(request, session)
    return TypingShown(queued=queued)
