"""Conversations API: the inbox's list, one conversation, and an agent's changes to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.conversations import service
from layanify.conversations.schemas import ConversationRead, ConversationUpdate
from layanify.pagination import MAX_LIMIT, ObjectId, Page
from layanify.realtime.publish import announce_conversation_updated

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.get("")
async def list_conversations(
    principal: CurrentPrincipal,
    session: SessionDep,
    filter: Annotated[
        str,
        Query(
            description="all, mine (assigned to me), unassigned, open or closed",
            json_schema_extra={"enum": list(service.INBOX_FILTERS)},
        ),
    ] = "all",
    q: Annotated[
        str | None,
        Query(
            max_length=service.MAX_SEARCH_LENGTH,
            description="contact name, number (any format) or message text contains",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> Page[ConversationRead]:
    """The workspace's conversations, newest activity first, with cursor pagination."""
    return await service.list_conversations(
        session,
        principal.workspace_id,
        user_id=principal.user_id,
        filter=filter,
        q=q,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> ConversationRead:
    """One conversation of the workspace (404 for another workspace's)."""
    return await service.read_conversation(session, principal.workspace_id, conversation_id)


@router.patch("/{conversation_id}")
async def change_conversation(
    request: Request,
    conversation_id: ObjectId,
    data: ConversationUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> ConversationRead:
    """Assign (`assigned_user_id`, null to unassign), close or reopen (`status`), or switch the number's
    auto-replies off or back on for this conversation (`auto_reply_enabled`). 422 when the assignee is
    not a member of the workspace; 404 for another workspace's conversation."""
    await service.update_conversation(session, principal.workspace_id, conversation_id, data)
    broker = getattr(request.app.state, "broker", None)  # other open inboxes refresh it after the commit
    announce_conversation_updated(
        session, broker, workspace_id=principal.workspace_id, conversation_id=conversation_id
    )
    return await service.read_conversation(session, principal.workspace_id, conversation_id)
