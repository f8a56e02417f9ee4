"""Settings, numbers, contacts and the webhook log pages.

The settings and numbers routes live in `settings_pages` and are included here, so the app registers
one router for all of these pages.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.dependencies import SessionDep
from layanify.contacts import service as contacts
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.db.session import after_commit_call
from layanify.errors import Forbidden, LayanifyError, NotFound
from layanify.media.routes import media_storage
from layanify.numbers.models import WhatsAppNumber
from layanify.pagination import ObjectId, decode_cursor, encode_cursor
from layanify.privacy import service as privacy
from layanify.web import settings_pages
from layanify.web.shell import CurrentPage, Page, go
from layanify.web.templating import render
from layanify.webhooks import service as webhooks
from layanify.webhooks.models import EventStatus, WebhookEvent
from layanify.webhooks.routes import payload_of

router = APIRouter(include_in_schema=False)
router.include_router(settings_pages.router)

CONTACTS_PAGE = 50
EVENTS_PAGE = 50
MAX_SEARCH = contacts.MAX_SEARCH_LENGTH
STATUSES = tuple(s.value for s in EventStatus)


# --- Contacts -------------------------------------------------------------------------------------


async def _contact_listing(session: AsyncSession, page: Page, q: str, cursor: str | None) -> dict[str, Any]:
    listing = await contacts.list_contacts(
        session, page.principal.workspace_id, q=q[:MAX_SEARCH] or None, limit=CONTACTS_PAGE, cursor=cursor
    )
    return {"contacts": listing.data, "next_cursor": listing.next_cursor, "q": q}


@router.get("/contacts")
async def contacts_page(
    request: Request, page: CurrentPage, session: SessionDep, q: str = "", cursor: str | None = None
) -> Response:
    """The workspace's contacts, searchable by name or number."""
    listing = await _contact_listing(session, page, q.strip(), cursor)
    return render(request, page.view, "contacts.html", **listing)


@router.get("/contacts/rows")
async def contacts_rows(
    request: Request, page: CurrentPage, session: SessionDep, q: str = "", cursor: str | None = None
) -> Response:
    """The next rows of the contact list ("Load more")."""
    listing = await _contact_listing(session, page, q.strip(), cursor)
    return render(request, page.view, "partials/contacts_rows.html", **listing)


async def _contact(session: AsyncSession, page: Page, contact_id: int) -> Contact:
    try:
        return await contacts.get_contact(session, page.principal.workspace_id, contact_id)
    except NotFound:
        raise NotFound(page.view.gettext("This contact does not exist.")) from None


async def conversations_of(session: AsyncSession, workspace_id: int, contact_id: int) -> list[dict[str, Any]]:
    """The contact's conversations, newest first, with the number each one is on.

    The conversations service has no per-contact listing yet; this is the one query the page needs.
    """
    rows = await session.execute(
        select(Conversation, WhatsAppNumber.display_name, WhatsAppNumber.number)
        .join(WhatsAppNumber, WhatsAppNumber.id == Conversation.number_id)
        .where(Conversation.workspace_id == workspace_id, Conversation.contact_id == contact_id)
        .order_by(Conversation.id.desc())
    )
    return [
        {"conversation": conversation, "number_name": name, "number": number}
        for conversation, name, number in rows.all()
    ]


@router.get("/contacts/{contact_id}")
async def contact_page(
    request: Request, contact_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """One contact: names, number, notes, tags, marketing preference, and their conversations."""
    contact = await _contact(session, page, contact_id)
    threads = await conversations_of(session, page.principal.workspace_id, contact.id)
    return render(
        request, page.view, "contact.html", contact=contact, threads=threads, saved=False, error=None
    )


@router.put("/contacts/{contact_id}")
async def save_contact(
    request: Request,
    contact_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    display_name: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
) -> Response:
    """Save the name agents use, the tags and the notes (any member may)."""
    contact = await _contact(session, page, contact_id)
    try:
        contact = await contacts.update_contact(
            session,
            page.principal.workspace_id,
            contact.id,
            display_name=display_name,
            notes=notes,
            tags=[t for t in tags.split(",") if t.strip()],
        )
    except LayanifyError as error:
        typed = {"display_name": display_name, "tags": tags, "notes": notes}
        return render(
            request,
            page.view,
            "partials/contact_form.html",
            contact=contact,
            typed=typed,
            saved=False,
            error=error.message,
        )
    return render(
        request, page.view, "partials/contact_form.html", contact=contact, typed=None, saved=True, error=None
    )


@router.delete("/contacts/{contact_id}")
async def erase_contact(
    request: Request, contact_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Erase the contact and everything about it (owners only); the browser goes back to the list."""
    if not page.principal.is_owner:
        raise Forbidden(page.view.gettext("Only a workspace owner can erase a contact."))
    contact = await _contact(session, page, contact_id)
    await privacy.erase_contact(
        session,
        workspace_id=page.principal.workspace_id,
        contact_id=contact.id,
        actor_user_id=page.principal.user_id,
        storage=media_storage(request),
    )
    return go(request, "/contacts")


# --- Webhook log ----------------------------------------------------------------------------------


def _status(value: str | None) -> str | None:
    return value if value in STATUSES else None


async def _event_listing(
    session: AsyncSession, page: Page, status: str | None, cursor: str | None
) -> dict[str, Any]:
    before_id = decode_cursor(cursor, (int,))[0] if cursor else None
    events = await webhooks.list_events(
        session,
        workspace_id=page.principal.workspace_id,
        limit=EVENTS_PAGE + 1,
        before_id=before_id,
        status=status,
    )
    shown = events[:EVENTS_PAGE]
    return {
        "events": shown,
        "next_cursor": encode_cursor(shown[-1].id) if len(events) > EVENTS_PAGE else None,
        "status": status or "",
        "statuses": STATUSES,
    }


@router.get("/webhook-log")
async def webhook_log_page(
    request: Request,
    page: CurrentPage,
    session: SessionDep,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """The webhook events Meta sent for this workspace, newest first."""
    listing = await _event_listing(session, page, _status(status), cursor)
    return render(request, page.view, "webhook_log.html", **listing)


@router.get("/webhook-log/rows")
async def webhook_log_rows(
    request: Request,
    page: CurrentPage,
    session: SessionDep,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """The next (older) events of the log ("Load more")."""
    listing = await _event_listing(session, page, _status(status), cursor)
    return render(request, page.view, "partials/webhook_log_rows.html", **listing)


async def _event(session: AsyncSession, page: Page, event_id: int) -> WebhookEvent:
    try:
        return await webhooks.get_event(session, event_id, workspace_id=page.principal.workspace_id)
    except NotFound:
        raise NotFound(page.view.gettext("This webhook event does not exist.")) from None


def _raw_body(event: WebhookEvent, workspace_id: int) -> str | None:
    """The body as received, pretty-printed; None when it also carries another workspace's data."""
    concerns = set((event.summary or {}).get("workspace_ids") or [workspace_id])
    if concerns != {workspace_id}:
        return None
    payload = payload_of(event)
    return payload if isinstance(payload, str) else json.dumps(payload, indent=2, ensure_ascii=False)


@router.get("/webhook-log/{event_id}")
async def webhook_event_page(
    request: Request, event_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """One event: what came of it and the body Meta sent."""
    event = await _event(session, page, event_id)
    return render(
        request,
        page.view,
        "webhook_log_event.html",
        event=event,
        raw=_raw_body(event, page.principal.workspace_id),
        replayed=False,
    )


@router.post("/webhook-log/{event_id}/replay")
async def replay_webhook_event(
    request: Request, event_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Process the event again (owners only; stored messages and statuses are not duplicated)."""
    if not page.principal.is_owner:
        raise Forbidden(page.view.gettext("Only a workspace owner can replay webhook events."))
    try:
        event = await webhooks.replay_event(session, event_id, workspace_id=page.principal.workspace_id)
    except NotFound:
        raise NotFound(page.view.gettext("This webhook event does not exist.")) from None
    after_commit_call(session, getattr(request.app.state, "wake_workers", None))
    return render(request, page.view, "partials/webhook_log_summary.html", event=event, replayed=True)
