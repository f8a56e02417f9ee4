"""Inbound customer messages of every type, from a short spec to Meta's `messages[]` item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from layanify.simulator.media import Media, sample

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")

DEFAULT_LOCATION = {
    "address": "Jl. M.H. Thamrin No.1, Menteng, Jakarta Pusat 10310",
    "latitude": -6.1950823,
    "longitude": 106.8231607,
    "name": "Grand Indonesia",
}
DEFAULT_CONTACT = {
    "name": {"formatted_name": "Andi Wijaya", "first_name": "Andi", "last_name": "Wijaya"},
    "phones": [{"phone": "+62 812-7788-9900", "wa_id": "6281277889900", "type": "CELL"}],
}

MediaFactory = Callable[[str, bytes, str | None], Media]


class SpecError(ValueError):
    """The customer message spec cannot be turned into a message."""


def build_message(
    spec: dict[str, Any],
    *,
    wamid: str,
    wa_id: str,
    timestamp: int,
    context: dict[str, str] | None,
    make_media: MediaFactory,
    media_url: Callable[[Media], str | None],
) -> dict[str, Any]:
    """The webhook `messages[]` item for `spec` (e.g. {"type": "text", "text": "Halo"})."""
    kind = spec.get("type")
    if not isinstance(kind, str):
        raise SpecError("spec needs a string 'type'")
    message: dict[str, Any] = {}
    if context is not None:
        message["context"] = context
    message.update({"from": wa_id, "id": wamid, "timestamp": str(timestamp), "type": kind})
    if kind in MEDIA_KINDS:
        message[kind] = _media(kind, spec, make_media, media_url)
    elif kind in _BUILDERS:
        message[kind] = _BUILDERS[kind](spec)
    elif isinstance(spec.get(kind), dict | list):
        message[kind] = spec[kind]  # any other type passes through as given (order, system, …)
    else:
        raise SpecError(f"unknown message type {kind!r}")
    return message


def _text(spec: dict[str, Any]) -> dict[str, Any]:
    text = spec.get("text", "")
    body = text.get("body", "") if isinstance(text, dict) else str(text)
    if not body:
        raise SpecError("a text message needs 'text'")
    return {"body": body}


def _media(
    kind: str, spec: dict[str, Any], make_media: MediaFactory, media_url: Callable[[Media], str | None]
) -> dict[str, Any]:
    mime_type, content = sample(kind)
    filename = spec.get("filename") if kind == "document" else None
    if kind == "document" and filename is None:
        filename = "document.pdf"
    media = make_media(mime_type, content, filename)
    item: dict[str, Any] = {}
    if kind in ("image", "video", "document") and spec.get("caption"):
        item["caption"] = str(spec["caption"])
    if filename is not None:
        item["filename"] = filename
    item.update({"mime_type": media.mime_type, "sha256": media.sha256, "id": media.id})
    url = media_url(media)
    if url is not None:
        item["url"] = url
    if kind == "audio":
        item["voice"] = bool(spec.get("voice", False))
    if kind == "sticker":
        item["animated"] = bool(spec.get("animated", False))
    return item


def _location(spec: dict[str, Any]) -> dict[str, Any]:
    location = dict(DEFAULT_LOCATION)
    for key in ("address", "latitude", "longitude", "name", "url"):
        if key in spec:
            location[key] = spec[key]
    return location


def _contacts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    contacts = spec.get("contacts")
    if isinstance(contacts, list) and contacts:
        return contacts
    return [DEFAULT_CONTACT]


def _interactive(spec: dict[str, Any]) -> dict[str, Any]:
    for kind in ("button_reply", "list_reply"):
        reply = spec.get(kind)
        if isinstance(reply, dict):
            return {"type": kind, kind: reply}
    raise SpecError("an interactive reply needs 'button_reply' or 'list_reply'")


def _button(spec: dict[str, Any]) -> dict[str, Any]:
    button = spec.get("button")
    if isinstance(button, dict):
        return {"payload": str(button.get("payload", "")), "text": str(button.get("text", ""))}
    text = str(spec.get("text", "OK"))
    return {"payload": str(spec.get("payload", text)), "text": text}


def _reaction(spec: dict[str, Any]) -> dict[str, Any]:
    message_id = spec.get("message_id")
    if not isinstance(message_id, str):
        raise SpecError("a reaction needs 'message_id'")
    reaction = {"message_id": message_id}
    if spec.get("emoji"):  # Meta omits `emoji` when the customer removes the reaction
        reaction["emoji"] = str(spec["emoji"])
    return reaction


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "text": _text,
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
}


def summary(message: dict[str, Any]) -> str:
    """A one-line text of a message for the phone page (either direction)."""
    kind = message.get("type", "text")
    content = message.get(kind)
    if kind == "text" and isinstance(content, dict):
        return str(content.get("body", ""))
    if kind in MEDIA_KINDS and isinstance(content, dict):
        label = content.get("caption") or content.get("filename") or ""
        return f"[{kind}] {label}".strip()
    if kind == "reaction" and isinstance(content, dict):
        return f"reacted {content.get('emoji', '(removed)')}"
    if kind == "interactive" and isinstance(content, dict):
        reply = content.get("button_reply") or content.get("list_reply")
        if isinstance(reply, dict):
            return str(reply.get("title", ""))
        body = content.get("body")
        return str(body.get("text", "")) if isinstance(body, dict) else "[interactive]"
    if kind == "button" and isinstance(content, dict):
        return str(content.get("text", ""))
    if kind == "template" and isinstance(content, dict):
        return f"[template {content.get('name')}]"
    if kind == "location" and isinstance(content, dict):
        return f"[location] {content.get('name', '')}".strip()
    return f"[{kind}]"
