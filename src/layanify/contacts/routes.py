"""Contacts API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.contacts import repository
from layanify.contacts.schemas import ContactRead
from layanify.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


@router.get("")
async def list_contacts(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name or number contains")] = None,
) -> Page[ContactRead]:
    """The workspace's contacts, oldest first, with cursor pagination."""
    after_id = decode_cursor(cursor, (int,))[0] if cursor else None
    rows = await repository.page(session, principal.workspace_id, limit=limit + 1, after_id=after_id, query=q)
    items = [ContactRead.model_validate(c) for c in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page[ContactRead](data=items, next_cursor=next_cursor)
