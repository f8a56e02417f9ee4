"""Validation of `POST /{phone_number_id}/messages` bodies, field by field, as Meta answers code 100."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from layanify.simulator.errors import GraphError, invalid_parameter, template_param_mismatch
from layanify.simulator.state import Template

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")
INTERACTIVE_TYPES = (
    "button",
    "list",
    "cta_url",
    "product",
    "product_list",
    "flow",
    "location_request_message",
)
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 512


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A validated send: who to, what type, and the echoes Meta keeps."""

    to: str
    wa_id: str
    type: str
    content: dict[str, Any]
    callback_data: str | None
    context_id: str | None

    @property
    def is_template(self) -> bool:
        """Templates may be sent outside the customer-service window."""
        return self.type == "template"


def _name(where: str, key: str) -> str:
    """`where` is a path prefix such as "text['" (closed here) or "" for top-level fields."""
    return f"{where}{key}']" if where.endswith("['") else f"{where}{key}"


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise invalid_parameter(f"The parameter {_name(where, key)} is required.")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise invalid_parameter(f"Param {_name(where, key)} must be a {_kind_name(kind)}.")
    return value


def _optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise invalid_parameter(f"Param {_name(where, key)} must be a {_kind_name(kind)}.")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if kind is str:
        return "string"
    if kind is dict:
        return "JSON object"
    if kind is list:
        return "JSON array"
    if kind is bool:
        return "boolean"
    return "number"


def _text(content: dict[str, Any]) -> None:
    body = _require(content, "body", str, "text['")
    if not body.strip():
        raise invalid_parameter("Param text['body'] must not be empty.")
    if len(body) > MAX_TEXT:
        raise invalid_parameter(f"Param text['body'] must be at most {MAX_TEXT} characters long.")
    _optional(content, "preview_url", bool, "text['")


def _media(kind: str) -> Callable[[dict[str, Any], Callable[[str], bool]], None]:
    def check(content: dict[str, Any], media_exists: Callable[[str], bool]) -> None:
        media_id = _optional(content, "id", str, f"{kind}['")
        link = _optional(content, "link", str, f"{kind}['")
        if (media_id is None) == (link is None):
            raise invalid_parameter(f"Param {kind} must contain exactly one of 'id' or 'link'.")
        if media_id is not None and not media_exists(media_id):
            raise invalid_parameter(f"Param {kind}['id'] is not a valid media id.")
        if link is not None and not link.startswith(("http://", "https://")):
            raise invalid_parameter(f"Param {kind}['link'] must be an http(s) URL.")
        if kind in CAPTIONED:
            _optional(content, "caption", str, f"{kind}['")
        if kind == "document":
            _optional(content, "filename", str, "document['")

    return check


def _location(content: dict[str, Any]) -> None:
    for key in ("latitude", "longitude"):
        _require(content, key, (int, float, str), "location['")
        try:
            float(content[key])
        except ValueError:
            raise invalid_parameter(f"Param location['{key}'] must be a number.") from None
    for key in ("name", "address"):
        _optional(content, key, str, "location['")


def _contacts(contacts: list[Any]) -> None:
    if not contacts:
        raise invalid_parameter("Param contacts must contain at least one contact.")
    for index, contact in enumerate(contacts):
        if not isinstance(contact, dict):
            raise invalid_parameter(f"Param contacts[{index}] must be a JSON object.")
        name = _require(contact, "name", dict, f"contacts[{index}]['")
        _require(name, "formatted_name", str, f"contacts[{index}]['name']['")


def _interactive(content: dict[str, Any]) -> None:
    kind = _require(content, "type", str, "interactive['")
    if kind not in INTERACTIVE_TYPES:
        raise invalid_parameter(f"Param interactive['type'] must be one of {', '.join(INTERACTIVE_TYPES)}.")
    action = _require(content, "action", dict, "interactive['")
    if kind in ("button", "list"):
        body = _require(content, "body", dict, "interactive['")
        _require(body, "text", str, "interactive['body']['")
    if kind == "button":
        buttons = _require(action, "buttons", list, "interactive['action']['")
        if not 1 <= len(buttons) <= 3:
            raise invalid_parameter("Param interactive['action']['buttons'] must have 1 to 3 buttons.")
        for index, button in enumerate(buttons):
            where = f"interactive['action']['buttons'][{index}]['"
            if not isinstance(button, dict) or button.get("type") != "reply":
                raise invalid_parameter(f"Param {where}type'] must be 'reply'.")
            reply = _require(button, "reply", dict, where)
            _require(reply, "id", str, where + "reply']['")
            _require(reply, "title", str, where + "reply']['")
    elif kind == "list":
        _require(action, "button", str, "interactive['action']['")
        sections = _require(action, "sections", list, "interactive['action']['")
        if not 1 <= len(sections) <= 10:
            raise invalid_parameter("Param interactive['action']['sections'] must have 1 to 10 sections.")
        for index, section in enumerate(sections):
            where = f"interactive['action']['sections'][{index}]['"
            if not isinstance(section, dict):
                raise invalid_parameter(f"Param {where[:-2]} must be a JSON object.")
            rows = _require(section, "rows", list, where)
            if not rows:
                raise invalid_parameter(f"Param {where}rows'] must not be empty.")


def _reaction(content: dict[str, Any]) -> None:
    _require(content, "message_id", str, "reaction['")
    emoji = content.get("emoji")
    if emoji is None or not isinstance(emoji, str):
        raise invalid_parameter("The parameter reaction['emoji'] is required.")


def _template(content: dict[str, Any]) -> None:
    _require(content, "name", str, "template['")
    language = _require(content, "language", dict, "template['")
    _require(language, "code", str, "template['language']['")
    components = _optional(content, "components", list, "template['")
    for index, component in enumerate(components or ()):
        where = f"template['components'][{index}]['"
        if not isinstance(component, dict):
            raise invalid_parameter(f"Param {where[:-2]} must be a JSON object.")
        _require(component, "type", str, where)
        _optional(component, "parameters", list, where)


def parse_send(body: dict[str, Any], media_exists: Callable[[str], bool]) -> SendRequest:
    """Check a send body like Meta does; code 100 naming the field when something is wrong."""
    product = body.get("messaging_product")
    if product is None:
        raise invalid_parameter("The parameter messaging_product is required.")
    if product != "whatsapp":
        raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type != "individual":
        raise invalid_parameter("Param recipient_type must be 'individual'.")
    to = _require(body, "to", str, "")
    wa_id = "".join(ch for ch in to if ch.isdigit())
    if not 6 <= len(wa_id) <= 15:
        raise invalid_parameter("Param to must be a phone number in international format.")
    kind = body.get("type", "text")
    if not isinstance(kind, str):
        raise invalid_parameter("Param type must be a string.")
    content = body.get(kind)
    if content is None:
        raise invalid_parameter(f"The parameter {kind} is required.")
    if kind == "contacts":
        if not isinstance(content, list):
            raise invalid_parameter("Param contacts must be a JSON array.")
        _contacts(content)
    else:
        if not isinstance(content, dict):
            raise invalid_parameter(f"Param {kind} must be a JSON object.")
        check = _CHECKS.get(kind)
        if check is None:
            raise invalid_parameter(f"Param type must be one of {', '.join(SEND_TYPES)}.")
        if kind in MEDIA_TYPES:
            _media(kind)(content, media_exists)
        else:
            check(content)
    callback_data = _optional(body, "biz_opaque_callback_data", str, "")
    if callback_data is not None and len(callback_data) > MAX_CALLBACK_DATA:
        raise invalid_parameter(
            f"Param biz_opaque_callback_data must be at most {MAX_CALLBACK_DATA} characters."
        )
    context = _optional(body, "context", dict, "")
    context_id = _require(context, "message_id", str, "context['") if context is not None else None
    return SendRequest(
        to,
        wa_id,
        kind,
        content if isinstance(content, dict) else {"contacts": content},
        callback_data,
        context_id,
    )


def check_template(content: dict[str, Any], template: Template) -> None:
    """Raise 132000 when the body/header parameters do not match the template's placeholders."""
    body_count = 0
    header_count = 0
    for component in content.get("components") or ():
        kind = str(component.get("type", "")).lower()
        count = len(component.get("parameters") or ())
        if kind == "body":
            body_count += count
        elif kind == "header":
            header_count += count
    if body_count != template.body_params:
        raise _mismatch("body", body_count, template.body_params)
    expected_header = 1 if template.header in ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION") else 0
    if header_count != expected_header:
        raise _mismatch("header", header_count, expected_header)


def _mismatch(where: str, got: int, expected: int) -> GraphError:
    return template_param_mismatch(
        f"{where}: number of localizable_params ({got}) does not match "
        f"the expected number of params ({expected})"
    )


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "text": _text,
    "location": _location,
    "interactive": _interactive,
    "reaction": _reaction,
    "template": _template,
    **{kind: (lambda content: None) for kind in MEDIA_TYPES},
}
SEND_TYPES = (*_CHECKS, "contacts")
