"""Contacts API: search and list, one contact, and what agents keep about them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from layanify.accounts.dependencies import CurrentPrincipal, SessionDep
from layanify.contacts import service
from layanify.contacts.schemas import ContactDetail, ContactRead, ContactUpdate
from layanify.pagination import MAX_LIMIT, ObjectId, Page

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


@router.get("")
async def list_contacts(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    q: Annotated[
        str | None,
        Query(max_length=service.MAX_SEARCH_LENGTH, description="name or number (any format) contains"),
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=service.MAX_TAG_LENGTH, description="has this tag (ignoring case)")
    ] = None,
) -> Page[ContactRead]:
    """The workspace's contacts, oldest first, with cursor pagination."""
    return await service.list_contacts(
        session, principal.workspace_id, q=q, tag=tag, limit=limit, cursor=cursor
    )


@router.get("/{contact_id}")
async def get_contact(
    contact_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> ContactDetail:
    """One contact of the workspace with its notes (404 for another workspace's)."""
    contact = await service.get_contact(session, principal.workspace_id, contact_id)
    return ContactDetail.model_validate(contact)


@router.patch("/{contact_id}")
async def update_contact(
    contact_id: ObjectId, data: ContactUpdate, principal: CurrentPrincipal, session: SessionDep
) -> ContactDetail:
    """Change the contact's display name, notes or tags; omitted fields stay. 422 names the field
    at fault (notes over 5,000 characters, more than 20 tags, a tag over 40 characters, …)."""
    given = data.model_dump(include=data.model_fields_set)
    contact = await service.update_contact(session, principal.workspace_id, contact_id, **given)
    return ContactDetail.model_validate(contact)
