"""The inbox: the conversation list, one conversation with its composer, and the contact panel."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.dependencies import SessionDep
from layanify.accounts.models import Membership, User
from layanify.automation import service as automation
from layanify.contacts import service as contacts
from layanify.contacts.models import Contact
from layanify.conversations import service as conversations
from layanify.conversations.models import Conversation
from layanify.db.base import utcnow
from layanify.db.session import after_commit_call
from layanify.errors import LayanifyError, NotFound
from layanify.media import service as media
from layanify.media.formats import MAX_UPLOAD_BYTES
from layanify.media.routes import media_storage
from layanify.messaging import service as messaging
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.pagination import ObjectId
from layanify.realtime.publish import announce_conversation_updated, announce_message_created
from layanify.web import present
from layanify.web.shell import CurrentPage, Page
from layanify.web.templating import render
from layanify.whatsapp.client import GraphClient

router = APIRouter(include_in_schema=False)
FILTERS = ("all", "mine", "unassigned", "open", "closed")
PAGE_SIZE = 40
MESSAGES_SHOWN = 150
PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def _announce(request: Request, session: AsyncSession, conversation: Conversation) -> None:
    """After the commit, tell the workspace's open pages that this conversation changed."""
    announce_conversation_updated(
        session,
        getattr(request.app.state, "broker", None),
        workspace_id=conversation.workspace_id,
        conversation_id=conversation.id,
    )


def _filter(value: str | None) -> str:
    return value if value in FILTERS else "all"


async def _list(session: AsyncSession, page: Page, flt: str, q: str | None, cursor: str | None) -> Any:
    return await conversations.list_conversations(
        session,
        page.principal.workspace_id,
        user_id=page.principal.user_id,
        filter=flt,
        q=(q or "").strip() or None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )


async def _members(session: AsyncSession, workspace_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [{"id": i, "name": n or e} for i, n, e in rows.all()]


async def _conversation_context(session: AsyncSession, page: Page, conversation_id: int) -> dict[str, Any]:
    conversation = await conversations.get_conversation(session, page.principal.workspace_id, conversation_id)
    contact = await session.get(Contact, conversation.contact_id)
    number = await numbers_repository.in_workspace(
        session, page.principal.workspace_id, conversation.number_id
    )
    recent = await messaging.recent_messages(session, conversation.id, limit=MESSAGES_SHOWN)
    now = utcnow()
    return {
        "conversation": conversation,
        "contact": contact,
        "number": number,
        "bubbles": present.bubbles(recent),
        "ticks": present.TICKS,
        "window_open": conversations.window_open(conversation, now),
        "members": await _members(session, page.principal.workspace_id),
        "number_problem": messaging.number_problem(number) if number is not None else None,
    }


@router.get("/inbox")
async def inbox(
    request: Request,
    page: CurrentPage,
    session: SessionDep,
    filter: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    """The conversation list, no conversation open."""
    flt = _filter(filter)
    listing = await _list(session, page, flt, q, cursor)
    return render(request, page.view, "inbox.html", listing=listing, flt=flt, q=q or "", selected=None)


@router.get("/inbox/list")
async def inbox_list(
    request: Request,
    page: CurrentPage,
    session: SessionDep,
    filter: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    selected: int | None = None,
) -> Response:
    """The list alone (live refresh, search, next page)."""
    flt = _filter(filter)
    listing = await _list(session, page, flt, q, cursor)
    template = "partials/conversation_items.html" if cursor else "partials/conversation_list.html"
    return render(request, page.view, template, listing=listing, flt=flt, q=q or "", selected=selected)


@router.get("/inbox/{conversation_id}")
async def conversation_page(
    request: Request,
    conversation_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    filter: str | None = None,
    q: str | None = None,
) -> Response:
    """A conversation beside the list (404 for another workspace's)."""
    try:
        context = await _conversation_context(session, page, conversation_id)
    except NotFound:
        return render(
            request,
            page.view,
            "not_found.html",
            status_code=404,
            message=page.view.gettext("This conversation does not exist."),
        )
    flt = _filter(filter)
    listing = await _list(session, page, flt, q, None)
    return render(
        request,
        page.view,
        "inbox.html",
        listing=listing,
        flt=flt,
        q=q or "",
        selected=conversation_id,
        **context,
    )


@router.get("/inbox/{conversation_id}/live")
async def conversation_live(
    request: Request, conversation_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """The conversation's header and messages (refreshed when its events arrive)."""
    context = await _conversation_context(session, page, conversation_id)
    return render(request, page.view, "partials/conversation_live.html", **context)


@router.post("/inbox/{conversation_id}/read")
async def mark_read(
    request: Request, conversation_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """The agent opened the conversation (unread cleared; a read receipt when the number says so)."""
    before = await conversations.get_conversation(session, page.principal.workspace_id, conversation_id)
    had_unread = before.unread_count > 0
    conversation, queued = await automation.conversation_opened(
        session, page.principal.workspace_id, conversation_id
    )
    if queued:
        after_commit_call(session, getattr(request.app.state, "wake_automation", None))
    if had_unread:  # other agents' lists lose the unread badge; nothing to say otherwise
        _announce(request, session, conversation)
    return Response(status_code=204)


async def _content_from_form(
    request: Request,
    session: AsyncSession,
    page: Page,
    conversation: Conversation,
    text: str,
    template: str,
    language: str,
    params: list[str],
    attachment: UploadFile | None,
) -> dict[str, Any]:
    if template:
        return {
            "type": "template",
            "name": template,
            "language": language or "en_US",
            "template_params": params,
        }
    if attachment is not None and attachment.filename:
        content = await attachment.read(MAX_UPLOAD_BYTES + 1)
        uploaded = await media.upload(
            session,
            workspace_id=page.principal.workspace_id,
            number_id=conversation.number_id,
            filename=attachment.filename,
            mime_type=attachment.content_type or "application/octet-stream",
            content=content,
            storage=media_storage(request),
            client=request.app.state.graph_client,
            keyring=request.app.state.keyring,
        )
        body: dict[str, Any] = {"type": uploaded.type, "media_id": uploaded.meta_media_id}
        if text.strip() and uploaded.type in ("image", "video", "document"):
            body["caption"] = text.strip()
        if uploaded.type == "document":
            body["filename"] = attachment.filename
        return body
    return {"type": "text", "text": text}


@router.post("/inbox/{conversation_id}/send")
async def send(
    request: Request,
    conversation_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    text: Annotated[str, Form()] = "",
    reply_to: Annotated[str, Form()] = "",
    template: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    params: Annotated[list[str] | None, Form()] = None,
    attachment: UploadFile | None = None,
) -> Response:
    """Queue the agent's message; answers a fresh composer (or the same one with the error)."""
    context = await _conversation_context(session, page, conversation_id)
    conversation: Conversation = context["conversation"]
    try:
        content = await _content_from_form(
            request,
            session,
            page,
            conversation,
            text,
            template.strip(),
            language.strip(),
            params or [],
            attachment,
        )
        message = await messaging.queue_message(
            session,
            workspace_id=page.principal.workspace_id,
            user_id=page.principal.user_id,
            conversation_id=conversation.id,
            content=content,
            reply_to=int(reply_to) if reply_to.isdigit() else None,
            default_region=request.app.state.settings.default_region,
        )
    except LayanifyError as error:
        await session.rollback()
        context = await _conversation_context(session, page, conversation_id)
        return render(
            request,
            page.view,
            "partials/composer.html",
            status_code=200,
            error=error.message,
            text=text,
            **context,
        )
    after_commit_call(session, getattr(request.app.state, "wake_outbox", None))
    announce_message_created(
        session,
        getattr(request.app.state, "broker", None),
        workspace_id=message.workspace_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
    )
    response = render(request, page.view, "partials/composer.html", error=None, text="", **context)
    response.headers["HX-Trigger"] = f"lay-conversation-{conversation.id}, lay-inbox"
    return response


@router.get("/inbox/{conversation_id}/templates")
async def templates(
    request: Request,
    conversation_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    name: str | None = None,
) -> Response:
    """The template picker: the number's approved templates, and the fields of the chosen one."""
    conversation = await conversations.get_conversation(session, page.principal.workspace_id, conversation_id)
    number = await numbers.get_number(session, page.principal.workspace_id, conversation.number_id)
    found: list[dict[str, Any]] = []
    problem = None
    try:
        token = numbers.access_token(number, request.app.state.keyring)
        if token and number.waba_id:
            client: GraphClient = request.app.state.graph_client
            for item in await client.templates(number.waba_id, token):
                if (item.status or "").upper() in ("APPROVED", ""):
                    body: dict[str, Any] = next(
                        (c for c in item.components if str(c.get("type", "")).upper() == "BODY"), {}
                    )
                    text = str(body.get("text", ""))
                    count = len(set(PLACEHOLDER.findall(text)))
                    found.append(
                        {"name": item.name, "language": item.language, "text": text, "params": count}
                    )
    except Exception as exc:
        problem = str(exc)[:200]
    chosen = next((t for t in found if f"{t['name']}|{t['language']}" == name), None)
    return render(
        request,
        page.view,
        "partials/template_picker.html",
        templates=found,
        chosen=chosen,
        problem=problem,
        conversation_id=conversation_id,
    )


@router.post("/inbox/{conversation_id}/state")
async def change_state(
    request: Request,
    conversation_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    action: Annotated[str, Form()],
    user_id: Annotated[str, Form()] = "",
) -> Response:
    """Assign, close, reopen, or switch auto-reply for this conversation."""
    workspace_id = page.principal.workspace_id
    if action == "assign":
        await conversations.assign(
            session, workspace_id, conversation_id, int(user_id) if user_id.isdigit() else None
        )
    elif action == "close":
        await conversations.close(session, workspace_id, conversation_id)
    elif action == "reopen":
        await conversations.reopen(session, workspace_id, conversation_id)
    elif action in ("auto_reply_on", "auto_reply_off"):
        await automation.set_conversation_auto_reply(
            session, workspace_id, conversation_id, action == "auto_reply_on"
        )
    else:
        raise NotFound("unknown action")
    context = await _conversation_context(session, page, conversation_id)
    _announce(request, session, context["conversation"])
    response = render(request, page.view, "partials/conversation_live.html", **context)
    response.headers["HX-Trigger"] = "lay-inbox"
    return response


@router.post("/inbox/{conversation_id}/contact")
async def save_contact(
    request: Request,
    conversation_id: ObjectId,
    page: CurrentPage,
    session: SessionDep,
    notes: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    """Save the contact's notes, tags and name from the side panel."""
    conversation = await conversations.get_conversation(session, page.principal.workspace_id, conversation_id)
    saved = None
    error = None
    try:
        await contacts.update_contact(
            session,
            page.principal.workspace_id,
            conversation.contact_id,
            notes=notes,
            tags=[t for t in (part.strip() for part in tags.split(",")) if t],
            display_name=display_name.strip() or None,
        )
        saved = page.view.gettext("Saved.")
    except LayanifyError as exc:
        await session.rollback()
        error = exc.message
    context = await _conversation_context(session, page, conversation_id)
    if saved:
        _announce(request, session, context["conversation"])
    response = render(request, page.view, "partials/contact_panel.html", saved=saved, error=error, **context)
    response.headers["HX-Trigger"] = "lay-inbox"
    return response
