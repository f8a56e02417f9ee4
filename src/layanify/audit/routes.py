"""The audit log API: `GET /api/v1/audit` for the workspace's owners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from layanify.accounts.dependencies import OwnerPrincipal, SessionDep
from layanify.audit import service
from layanify.audit.schemas import AuditEntryRead
from layanify.pagination import MAX_LIMIT, Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
async def list_audit_entries(
    principal: OwnerPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="exactly this action, or a family ending in a dot: `auth.`"),
    ] = None,
) -> Page[AuditEntryRead]:
    """The workspace's audit log (owners only), newest first, with cursor pagination."""
    return await service.list_entries(
        session, principal.workspace_id, action=action, cursor=cursor, limit=limit
    )
