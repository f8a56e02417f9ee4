"""Content encryption API: whether the workspace's message content is encrypted at rest."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from layanify.accounts.dependencies import CurrentPrincipal, OwnerPrincipal, SessionDep, client_ip
from layanify.crypto import sealing

router = APIRouter(prefix="/api/v1/workspace", tags=["workspace"])


class ContentEncryption(BaseModel):
    """Message text, captions, conversation previews and media files encrypted at rest (new ones)."""

    model_config = ConfigDict(extra="forbid")

    content_encryption: bool


@router.get("/encryption")
async def get_content_encryption(principal: CurrentPrincipal, session: SessionDep) -> ContentEncryption:
    """Whether the workspace encrypts its message content at rest."""
    on = await sealing.workspace_choice(session, principal.workspace_id)
    return ContentEncryption(content_encryption=on)


@router.patch("/encryption")
async def set_content_encryption(
    data: ContentEncryption, request: Request, principal: OwnerPrincipal, session: SessionDep
) -> ContentEncryption:
    """Turn encryption at rest on or off for what is stored from now on (owners only). Content already
    stored stays readable either way; `layanify keys rotate` encrypts what was stored before."""
    on = await sealing.choose(
        session,
        principal.workspace_id,
        data.content_encryption,
        actor_user_id=principal.user_id,
        ip=client_ip(request),
    )
    return ContentEncryption(content_encryption=on)
