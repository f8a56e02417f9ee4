"""How a stored message looks in the inbox: one plain structure per bubble, built from its content.

Pure functions (no database, no web), so every content type's rendering is tested on its own. Nothing
here produces HTML: the templates escape everything they print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from layanify.messaging.models import Message
from layanify.whatsapp.errors import error_for_code

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# What the agent is told about content WhatsApp could not pass on.
UNSUPPORTED_HELP = (
    "WhatsApp did not deliver this content to the API (for example a poll, an edit or a view-once message)."
)


@dataclass
class Bubble:
    """One message as the conversation view shows it."""

    id: int
    wamid: str | None
    direction: str
    kind: str
    at: datetime
    status: str
    automated: bool = False
    text: str = ""
    caption: str = ""
    media_url: str | None = None
    mime_type: str = ""
    filename: str = ""
    file_size: int | None = None
    voice: bool = False
    location: dict[str, Any] | None = None
    map_url: str | None = None
    contacts: list[dict[str, str]] = field(default_factory=list)
    choice: str = ""
    template: str = ""
    quote: str | None = None
    reactions: list[str] = field(default_factory=list)
    failure: dict[str, str | None] | None = None
    system: bool = False
    unsupported: str | None = None
    summary: str = ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any, default: dict[str, Any] | None = None) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return default if default is not None else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _contacts(items: Any) -> list[dict[str, str]]:
    people = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        name = _dict(item.get("name"))
        phones = _list(item.get("phones"))
        first_phone = next((p for p in phones if isinstance(p, dict)), {})
        people.append(
            {
                "name": _str(name.get("formatted_name")) or _str(name.get("first_name")) or "?",
                "phone": _str(first_phone.get("phone")) or _str(first_phone.get("wa_id")),
            }
        )
    return people


def _failure(message: Message) -> dict[str, str | None] | None:
    if message.status != "failed":
        return None
    remedy = error_for_code(message.error_code).remedy if message.error_code else None
    return {
        "title": message.error_title or "Not sent",
        "details": message.error_details,
        "code": str(message.error_code) if message.error_code else None,
        "action": message.error_action,
        "remedy": remedy,
    }


def bubble(message: Message) -> Bubble:
    """The view of one message (reactions and quotes are filled in by `bubbles`)."""
    content: dict[str, Any] = message.content if isinstance(message.content, dict) else {}
    kind = _str(content.get("type")) or message.type
    view = Bubble(
        id=message.id,
        wamid=message.wamid,
        direction=message.direction,
        kind=kind,
        at=message.timestamp,
        status=message.status,
        automated=message.is_automated,
        failure=_failure(message),
    )
    view.text = _str(content.get("text"))
    if kind in MEDIA_TYPES:
        media = _dict(content.get("media"))
        view.caption = _str(content.get("caption")) or _str(media.get("caption"))
        view.media_url = _str(content.get("media_url")) or _str(content.get("link")) or None
        view.mime_type = _str(media.get("mime_type")) or _str(content.get("mime_type"))
        view.filename = _str(media.get("filename")) or _str(content.get("filename"))
        size = media.get("file_size")
        view.file_size = size if isinstance(size, int) else None
        view.voice = bool(media.get("voice"))
    elif kind == "location":
        place = _dict(content.get("location"), content)
        view.location = {k: place.get(k) for k in ("latitude", "longitude", "name", "address") if k in place}
        if "latitude" in place and "longitude" in place:
            view.map_url = (
                f"https://www.openstreetmap.org/?mlat={place['latitude']}&mlon={place['longitude']}"
            )
    elif kind == "contacts":
        view.contacts = _contacts(content.get("contacts"))
    elif kind == "interactive":
        reply = _dict(content.get("interactive"))
        view.choice = _str(reply.get("title")) or _str(content.get("text"))
        if message.direction == "outbound":
            body = _dict(reply.get("body"))
            view.text = view.text or _str(body.get("text")) or _str(content.get("body"))
            view.choice = ""
    elif kind == "button":
        view.choice = _str(content.get("text"))
    elif kind == "template":
        view.template = _str(content.get("name"))
        params = content.get("template_params")
        view.text = " · ".join(str(p) for p in params) if isinstance(params, list) else ""
    elif kind == "system":
        view.system = True
        system = _dict(content.get("system"))
        view.text = view.text or _str(system.get("body")) or "The customer's WhatsApp account changed."
    elif kind in ("unsupported", "unknown") or (message.direction == "inbound" and kind not in KNOWN):
        view.unsupported = UNSUPPORTED_HELP
        errors = content.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            view.unsupported += " " + (_str(errors[0].get("title")) or _str(errors[0].get("message")))
    elif kind == "order":
        order = _dict(content.get("order"))
        items = _list(order.get("product_items"))
        view.text = f"Order: {len(items)} item(s)" + (
            f" — {_str(order.get('text'))}" if order.get("text") else ""
        )
    if view.choice and view.text == view.choice:
        view.text = ""  # a button or list reply: shown once, as the choice
    view.summary = summary(view)
    return view


KNOWN = frozenset(
    {"text", "location", "contacts", "interactive", "button", "reaction", "order", "system", "template"}
    | MEDIA_TYPES
)


def summary(view: Bubble) -> str:
    """A one-line description (quotes, titles)."""
    if view.text:
        return view.text[:120]
    if view.caption:
        return view.caption[:120]
    if view.choice:
        return view.choice[:120]
    if view.template:
        return view.template
    return view.kind


def bubbles(messages: list[Message]) -> list[Bubble]:
    """The conversation's bubbles, oldest first: reactions sit on the message they react to (the latest
    reaction of each side wins; a removal clears it) and replies quote their original."""
    by_wamid: dict[str, Bubble] = {}
    shown: list[Bubble] = []
    reactions: dict[tuple[str, str], str] = {}
    for message in messages:
        content = message.content if isinstance(message.content, dict) else {}
        if message.type == "reaction" or content.get("type") == "reaction":
            reaction = _dict(content.get("reaction"), content)
            target = _str(reaction.get("message_id"))
            if target:
                reactions[(target, message.direction)] = _str(reaction.get("emoji"))
            continue
        view = bubble(message)
        context = _dict(content.get("context"))
        quoted = _str(context.get("id")) or (message.reply_to_wamid or "")
        if quoted:
            original = by_wamid.get(quoted)
            view.quote = original.summary if original is not None else "…"
        if message.wamid:
            by_wamid[message.wamid] = view
        shown.append(view)
    for (target, _), emoji in reactions.items():
        if emoji and target in by_wamid:
            by_wamid[target].reactions.append(emoji)
    return shown


TICKS = {"queued": "🕓", "sending": "🕓", "sent": "✓", "delivered": "✓✓", "read": "✓✓", "played": "✓✓"}
