"""Reading Meta's webhook payloads: every entry, change, message and status, tolerant of what is new.

Facts this module relies on are in shared/docs/wire-format.md; each function takes the decoded JSON
and never raises on missing or unexpected keys (an unknown shape becomes `raw` content).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

JSON = dict[str, Any]
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
MEDIA_KEYS = ("id", "mime_type", "sha256", "url", "filename", "voice", "animated")
MAX_DEPTH = 64
# The longest WhatsApp user id (`wa_id`, a message's `from`) and message id (`wamid`) kept: what the
# columns that store them hold. Meta's are far shorter (digits of a phone number; ~60 characters), so a
# longer one is not Meta's and its item is set aside rather than cut (a cut id could name another).
WA_ID_MAX = 32
WAMID_MAX = 256


class PayloadError(ValueError):
    """The body is not a webhook envelope we can read (not an object, or no entry list)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One `entry[].changes[]` item."""

    waba_id: str
    field: str
    value: JSON
    time: datetime | None


@dataclass(frozen=True, slots=True)
class Profile:
    """A `value.contacts[]` item: who wrote."""

    wa_id: str
    name: str
    user_id: str | None


@dataclass(slots=True)
class MessagesValue:
    """The `value` of a `messages` change, split into what it carries."""

    phone_number_id: str | None
    display_phone_number: str | None
    profiles: dict[str, Profile] = field(default_factory=dict)
    messages: list[JSON] = field(default_factory=list)
    statuses: list[JSON] = field(default_factory=list)
    errors: list[JSON] = field(default_factory=list)
    # Messages and statuses set aside (an id too long to be Meta's), one line each saying why.
    rejected: list[str] = field(default_factory=list)


def _as_dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """Unix seconds as a string (Meta) or an integer (some SDK fixtures) → aware UTC datetime."""
    if isinstance(value, bool):
        return None
    try:
        seconds = int(value) if isinstance(value, int | float) else int(str(value).strip())
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def without_nul(value: Any, _depth: int = 0) -> Any:
    """The JSON value with NUL characters removed from every string and key.

    JSON may carry them (`\\u0000`), PostgreSQL can store them in no text column: one in a profile name
    or a message would fail its whole event on every retry. They never mean anything in WhatsApp text.
    Raises PayloadError past MAX_DEPTH levels of nesting (Meta's payloads are under ten deep).
    """
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if _depth > MAX_DEPTH and isinstance(value, dict | list):
        raise PayloadError(f"nested deeper than {MAX_DEPTH} levels: not a webhook payload")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(item, _depth + 1) for item in value]
    return value


def changes_of(body: bytes) -> list[Change]:
    """Every change of every entry of a raw webhook body, with NULs removed (`without_nul`); PayloadError
    when it is not JSON, not Meta's envelope, or nested past MAX_DEPTH.

    Most bodies skip `without_nul`'s walk, which rebuilt every dict and list of every body (~25 µs of
    ~700 a processed event): only an escaped NUL can put one in a string, and nesting past MAX_DEPTH
    needs more than MAX_DEPTH brackets (counting those inside strings only makes the test stricter).
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    may_need_walk = b"\\u0000" in body or body.count(b"{") + body.count(b"[") > MAX_DEPTH
    return list(_changes(payload, walk=may_need_walk))


def _changes(body: Any, *, walk: bool) -> Iterator[Change]:
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise PayloadError("expected a JSON object with an 'entry' list (Meta's webhook envelope)")
    for entry in without_nul(body["entry"]) if walk else body["entry"]:
        entry = _as_dict(entry)
        waba_id = _as_str(entry.get("id")) or ""
        time = parse_timestamp(entry.get("time")) if entry.get("time") is not None else None
        for change in _as_list(entry.get("changes")):
            change = _as_dict(change)
            name = _as_str(change.get("field")) or ""
            yield Change(waba_id=waba_id, field=name, value=_as_dict(change.get("value")), time=time)


def parse_messages_value(value: JSON) -> MessagesValue:
    """Split a `messages` change value into profiles, messages, statuses and system-level errors."""
    metadata = _as_dict(value.get("metadata"))
    parsed = MessagesValue(
        phone_number_id=_as_str(metadata.get("phone_number_id")),
        display_phone_number=_as_str(metadata.get("display_phone_number")),
    )
    for item in _as_list(value.get("contacts")):
        item = _as_dict(item)
        wa_id = _as_str(item.get("wa_id"))
        if wa_id and len(wa_id) <= WA_ID_MAX:
            # Bounded to what is stored, so an odd profile cannot make a whole event fail.
            name = (_as_str(_as_dict(item.get("profile")).get("name")) or "")[:256]
            user_id = (_as_str(item.get("user_id")) or "")[:128] or None
            parsed.profiles[wa_id] = Profile(wa_id=wa_id, name=name, user_id=user_id)
    for message in _as_list(value.get("messages")):
        if isinstance(message, dict):
            problem = _too_long(message, "from", WA_ID_MAX) or _too_long(message, "id", WAMID_MAX)
            if problem:
                parsed.rejected.append(f"message {problem}")
            else:
                parsed.messages.append(message)
    for status in _as_list(value.get("statuses")):
        if isinstance(status, dict):
            if problem := _too_long(status, "id", WAMID_MAX):
                parsed.rejected.append(f"status {problem}")
            else:
                parsed.statuses.append(status)
    parsed.errors = [e for e in _as_list(value.get("errors")) if isinstance(e, dict)]
    return parsed


def _too_long(item: JSON, key: str, limit: int) -> str | None:
    """Why `item[key]` cannot be kept (a string over `limit` characters), or None."""
    value = item.get(key)
    if isinstance(value, str) and len(value) > limit:
        return f"with a `{key}` of {len(value)} characters (at most {limit}): not one of Meta's, set aside"
    return None


def fitting_id(value: Any, limit: int) -> str | None:
    """`value` when it is a string that fits `limit` (an id we keep), else None (not cut: a cut id could
    name another)."""
    return value if isinstance(value, str) and len(value) <= limit else None


def normalize_error(error: JSON) -> JSON:
    """One error shape for every place Meta puts errors (older shapes lack some keys)."""
    return {
        "code": error.get("code") if isinstance(error.get("code"), int) else None,
        "title": _as_str(error.get("title")) or _as_str(error.get("message")) or "",
        "message": _as_str(error.get("message")) or "",
        "details": _as_str(_as_dict(error.get("error_data")).get("details")) or "",
        "href": _as_str(error.get("href")),
    }


def _media(obj: JSON) -> JSON:
    return {key: obj[key] for key in MEDIA_KEYS if key in obj}


def message_content(message: JSON) -> JSON:
    """The stored `content` of an inbound message: `type` plus everything that type carries."""
    declared = _as_str(message.get("type")) or "unknown"
    kind = declared[:32]  # bounded to what is stored
    content: JSON = {"type": kind}
    body = _as_dict(message.get(declared))
    if kind == "text":
        content["text"] = _as_str(body.get("body")) or ""
    elif kind in MEDIA_TYPES:
        content["media"] = _media(body)
        if (caption := _as_str(body.get("caption"))) is not None:
            content["caption"] = caption
    elif kind == "location":
        content["location"] = {
            k: body[k] for k in ("latitude", "longitude", "name", "address", "url") if k in body
        }
    elif kind == "contacts":
        content["contacts"] = _as_list(message.get("contacts"))
    elif kind == "interactive":
        reply_type = _as_str(body.get("type")) or ""
        reply = _as_dict(body.get(reply_type)) if reply_type else {}
        content["interactive"] = {"type": reply_type, **reply}
        if (title := _as_str(reply.get("title"))) is not None:
            content["text"] = title
    elif kind == "button":
        content["button"] = {k: body[k] for k in ("payload", "text") if k in body}
        if (text := _as_str(body.get("text"))) is not None:
            content["text"] = text
    elif kind == "reaction":
        emoji = _as_str(body.get("emoji")) or ""
        content["reaction"] = {"message_id": _as_str(body.get("message_id")), "emoji": emoji}
        content["removed"] = emoji == ""
    elif kind == "order":
        content["order"] = body
    elif kind == "system":
        content["system"] = body
        if (text := _as_str(body.get("body"))) is not None:
            content["text"] = text
    elif kind == "unsupported":
        if body:
            content["unsupported"] = body  # e.g. {"type": "edit"}: what the customer did that we cannot show
    elif body:
        content["raw"] = body  # a type newer than this code: keep it whole
    errors = [normalize_error(_as_dict(e)) for e in _as_list(message.get("errors"))]
    if errors:
        content["errors"] = errors
    if isinstance(message.get("referral"), dict):
        content["referral"] = message["referral"]
    if isinstance(message.get("context"), dict):
        content["context"] = message["context"]
    return content


def preview(content: JSON) -> str:
    """A short line describing a message for conversation lists."""
    kind = content.get("type", "")
    text = content.get("text") or content.get("caption")
    if kind == "reaction":
        reaction = _as_dict(content.get("reaction"))
        return "Reaction removed" if content.get("removed") else f"Reacted {reaction.get('emoji', '')}"
    if isinstance(text, str) and text:
        return text[:200]
    if kind == "order":
        order = _as_dict(content.get("order"))
        return str(order.get("text") or "Order")[:200]
    if kind == "location":
        location = _as_dict(content.get("location"))
        return str(location.get("name") or "Location")[:200]
    return f"[{kind}]"
