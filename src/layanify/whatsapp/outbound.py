"""What our API accepts as the `content` of an outgoing message, and Meta's send body built from it.

Limits are Meta's (Send messages reference, one page per type under
https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/), checked here so a
bad message is refused when it is queued, not minutes later by the Graph API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

JSON = dict[str, Any]

TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
SECTION_TITLE_MAX = 24
TEMPLATE_NAME_MAX = 512
CALLBACK_DATA_MAX = 512


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]
WebUrl = Annotated[str, AfterValidator(_web_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TextContent(_Model):
    """A text message; URLs in it get a link preview when `preview_url` is true."""

    type: Literal["text"] = "text"
    text: NonBlank = Field(min_length=1, max_length=TEXT_MAX, validation_alias=AliasChoices("text", "body"))
    preview_url: bool = False

    def graph_object(self) -> JSON:
        """Meta's `text` object."""
        return {"preview_url": self.preview_url, "body": self.text}


class MediaContent(_Model):
    """An image, video, audio, document or sticker, by uploaded media id or by public link."""

    type: Literal["image", "video", "audio", "document", "sticker"]
    media_id: str | None = Field(default=None, min_length=1)
    link: WebUrl | None = Field(
        default=None, max_length=2048, validation_alias=AliasChoices("link", "media_url", "mediaUrl")
    )
    caption: str | None = Field(
        default=None, max_length=CAPTION_MAX, validation_alias=AliasChoices("caption", "text")
    )
    filename: str | None = Field(default=None, min_length=1, max_length=240)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.media_id is None) == (self.link is None):
            raise ValueError("give exactly one of media_id or link")
        if self.caption is not None and self.type in ("audio", "sticker"):
            raise ValueError(f"{self.type} messages cannot have a caption")
        if self.filename is not None and self.type != "document":
            raise ValueError("filename is only for documents")
        return self

    def graph_object(self) -> JSON:
        """Meta's media object: `id` or `link`, plus `caption` / `filename` where allowed."""
        obj: JSON = {"id": self.media_id} if self.media_id is not None else {"link": self.link}
        if self.caption:
            obj["caption"] = self.caption
        if self.filename is not None:
            obj["filename"] = self.filename
        return obj


class LocationContent(_Model):
    """A map pin."""

    type: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=1000)
    address: str | None = Field(default=None, max_length=1000)

    def graph_object(self) -> JSON:
        """Meta's `location` object."""
        obj: JSON = {"latitude": self.latitude, "longitude": self.longitude}
        if self.name is not None:
            obj["name"] = self.name
        if self.address is not None:
            obj["address"] = self.address
        return obj


class ContactsContent(_Model):
    """One or more contact cards, in Meta's contact object shape (name.formatted_name required)."""

    type: Literal["contacts"] = "contacts"
    contacts: list[JSON] = Field(min_length=1, max_length=257)

    @field_validator("contacts")
    @classmethod
    def _formatted_names(cls, contacts: list[JSON]) -> list[JSON]:
        for index, contact in enumerate(contacts):
            name = contact.get("name")
            formatted = name.get("formatted_name") if isinstance(name, dict) else None
            if not isinstance(formatted, str) or not formatted.strip():
                raise ValueError(f"contacts[{index}].name.formatted_name is required")
        return contacts

    def graph_object(self) -> list[JSON]:
        """Meta's `contacts` array."""
        return [dict(contact) for contact in self.contacts]


# --- interactive ------------------------------------------------------------------------------------


class InteractiveBody(_Model):
    """The body of an interactive message."""

    text: NonBlank = Field(min_length=1, max_length=INTERACTIVE_BODY_MAX)


class InteractiveFooter(_Model):
    """The footer of an interactive message."""

    text: NonBlank = Field(min_length=1, max_length=FOOTER_MAX)


class InteractiveHeader(_Model):
    """A header: text for lists, text or media for buttons (Meta's header object)."""

    type: Literal["text", "image", "video", "document"]
    text: str | None = Field(default=None, min_length=1, max_length=HEADER_TEXT_MAX)
    image: JSON | None = None
    video: JSON | None = None
    document: JSON | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        media = getattr(self, self.type)
        if media is None:
            raise ValueError(f"a {self.type} header needs its `{self.type}` value")
        if self.type != "text" and not (media.get("id") or media.get("link")):
            raise ValueError(f"a {self.type} header needs an id or a link")
        return self


class Reply(_Model):
    """A reply button's id and title."""

    id: NonBlank = Field(min_length=1, max_length=BUTTON_ID_MAX)
    title: NonBlank = Field(min_length=1, max_length=BUTTON_TITLE_MAX)


class ReplyButton(_Model):
    """One reply button."""

    type: Literal["reply"] = "reply"
    reply: Reply


class ButtonsAction(_Model):
    """The action of a reply-buttons message: 1 to 3 buttons with distinct ids and titles."""

    buttons: list[ReplyButton] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [button.reply.id for button in self.buttons]
        titles = [button.reply.title for button in self.buttons]
        if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
            raise ValueError("button ids and titles must be unique")
        return self


class Row(_Model):
    """One row of a list message."""

    id: NonBlank = Field(min_length=1, max_length=ROW_ID_MAX)
    title: NonBlank = Field(min_length=1, max_length=ROW_TITLE_MAX)
    description: str | None = Field(default=None, max_length=ROW_DESCRIPTION_MAX)


class Section(_Model):
    """A section of a list message."""

    title: str | None = Field(default=None, min_length=1, max_length=SECTION_TITLE_MAX)
    rows: list[Row] = Field(min_length=1, max_length=LIST_ROWS_MAX)


class ListAction(_Model):
    """The action of a list message: the menu button's label and 1–10 sections, 10 rows in total."""

    button: str = Field(min_length=1, max_length=LIST_BUTTON_MAX)
    sections: list[Section] = Field(min_length=1, max_length=LIST_SECTIONS_MAX)

    @model_validator(mode="after")
    def _rows(self) -> Self:
        rows = [row.id for section in self.sections for row in section.rows]
        if len(rows) > LIST_ROWS_MAX:
            raise ValueError(f"a list can have at most {LIST_ROWS_MAX} rows in all sections")
        if len(set(rows)) != len(rows):
            raise ValueError("row ids must be unique")
        if len(self.sections) > 1 and any(section.title is None for section in self.sections):
            raise ValueError("every section needs a title when there is more than one")
        return self


class ButtonInteractive(_Model):
    """Meta's interactive object for reply buttons."""

    type: Literal["button"]
    header: InteractiveHeader | None = None
    body: InteractiveBody
    footer: InteractiveFooter | None = None
    action: ButtonsAction


class ListInteractive(_Model):
    """Meta's interactive object for a list message (text header only)."""

    type: Literal["list"]
    header: InteractiveHeader | None = None
    body: InteractiveBody
    footer: InteractiveFooter | None = None
    action: ListAction

    @field_validator("header")
    @classmethod
    def _text_header(cls, header: InteractiveHeader | None) -> InteractiveHeader | None:
        if header is not None and header.type != "text":
            raise ValueError("a list message can only have a text header")
        return header


Interactive = Annotated[ButtonInteractive | ListInteractive, Field(discriminator="type")]


def _text_part(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


def _expand_shorthand(data: Any) -> Any:
    """`{"body": "Pick", "buttons": [...]}` / `{"body", "button", "sections"}` → Meta's interactive object."""
    if not isinstance(data, dict) or "interactive" in data:
        return data
    short = dict(data)
    interactive: JSON = {}
    if "body" in short:
        interactive["body"] = _text_part(short.pop("body"))
    if "footer" in short:
        interactive["footer"] = _text_part(short.pop("footer"))
    if "header" in short:
        header = short.pop("header")
        interactive["header"] = {"type": "text", "text": header} if isinstance(header, str) else header
    if "buttons" in short:
        buttons = short.pop("buttons")
        interactive["type"] = "button"
        interactive["action"] = {
            "buttons": [
                {"type": "reply", "reply": b} if isinstance(b, dict) and "reply" not in b else b
                for b in (buttons if isinstance(buttons, list) else [buttons])
            ]
        }
    elif "sections" in short or "button" in short:
        interactive["type"] = "list"
        interactive["action"] = {"button": short.pop("button", None), "sections": short.pop("sections", None)}
    short["interactive"] = interactive
    return short


class InteractiveContent(_Model):
    """Reply buttons or a list menu: Meta's interactive object, or the shorthand `body` + buttons/sections."""

    type: Literal["interactive"] = "interactive"
    interactive: Interactive

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return _expand_shorthand(data)

    def graph_object(self) -> JSON:
        """Meta's `interactive` object."""
        return self.interactive.model_dump(mode="json", exclude_none=True)


class ReactionContent(_Model):
    """An emoji reaction to a message; an empty emoji removes our reaction."""

    type: Literal["reaction"] = "reaction"
    message_id: str = Field(min_length=1, max_length=256)
    emoji: str = Field(default="", max_length=32)

    def graph_object(self) -> JSON:
        """Meta's `reaction` object."""
        return {"message_id": self.message_id, "emoji": self.emoji}


class TemplateContent(_Model):
    """An approved template, with Meta's components or the seed's plain list of body values."""

    type: Literal["template"] = "template"
    name: str = Field(
        min_length=1,
        max_length=TEMPLATE_NAME_MAX,
        validation_alias=AliasChoices("name", "template_name", "templateName"),
    )
    language: str = Field(default="en_US", pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
    components: list[JSON] | None = None
    template_params: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("template_params", "templateParams")
    )

    @field_validator("components")
    @classmethod
    def _components(cls, components: list[JSON] | None) -> list[JSON] | None:
        for index, component in enumerate(components or []):
            if not isinstance(component.get("type"), str) or not component["type"]:
                raise ValueError(f"components[{index}] needs a type (header, body or button)")
            parameters = component.get("parameters", [])
            if not isinstance(parameters, list):
                raise ValueError(f"components[{index}].parameters must be a list")
            for position, parameter in enumerate(parameters):
                if not isinstance(parameter, dict) or not isinstance(parameter.get("type"), str):
                    raise ValueError(f"components[{index}].parameters[{position}] needs a type")
        return components

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.components is not None and self.template_params is not None:
            raise ValueError("give either components or template_params, not both")
        return self

    def graph_components(self) -> list[JSON] | None:
        """The components sent to Meta (template_params become one body component of text values)."""
        if self.template_params is not None:
            if not self.template_params:
                return None
            parameters = [{"type": "text", "text": value} for value in self.template_params]
            return [{"type": "body", "parameters": parameters}]
        return self.components

    def graph_object(self) -> JSON:
        """Meta's `template` object."""
        obj: JSON = {"name": self.name, "language": {"code": self.language}}
        components = self.graph_components()
        if components:
            obj["components"] = components
        return obj


OutboundContent = Annotated[
    TextContent
    | MediaContent
    | LocationContent
    | ContactsContent
    | InteractiveContent
    | ReactionContent
    | TemplateContent,
    Field(discriminator="type"),
]

_ADAPTER: TypeAdapter[OutboundContent] = TypeAdapter(OutboundContent)


def parse_content(data: dict[str, Any]) -> OutboundContent:
    """Validate our API's `content`; raises pydantic's ValidationError naming the bad field."""
    return _ADAPTER.validate_python(data)


def build_message_body(
    to: str,
    content: OutboundContent,
    *,
    reply_to_wamid: str | None = None,
    callback_data: str | None = None,
) -> JSON:
    """Meta's body for `POST /{phone_number_id}/messages`."""
    body: JSON = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": content.type,
        content.type: content.graph_object(),
    }
    if reply_to_wamid is not None:
        body["context"] = {"message_id": reply_to_wamid}
    if callback_data is not None:
        if len(callback_data.encode()) > CALLBACK_DATA_MAX:
            raise ValueError(f"callback_data is limited to {CALLBACK_DATA_MAX} bytes")
        body["biz_opaque_callback_data"] = callback_data
    return body


def build_read_body(wamid: str, *, typing: bool = False) -> JSON:
    """Meta's body to mark a received message read, optionally showing a typing indicator (≤ 25 s)."""
    body: JSON = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    if typing:
        body["typing_indicator"] = {"type": "text"}
    return body


_MEDIA_LABELS = {
    "image": "📷 Photo",
    "video": "🎥 Video",
    "audio": "🎵 Audio",
    "document": "📄 Document",
    "sticker": "Sticker",
}


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def content_preview(content: OutboundContent) -> str:
    """A short line describing an outgoing message for conversation lists."""
    if isinstance(content, TextContent):
        return _short(content.text)
    if isinstance(content, MediaContent):
        label = _MEDIA_LABELS[content.type]
        detail = content.caption or content.filename
        return _short(f"{label}: {detail}" if detail else label)
    if isinstance(content, LocationContent):
        return _short(f"📍 {content.name or content.address or 'Location'}")
    if isinstance(content, ContactsContent):
        first = content.contacts[0]["name"]["formatted_name"]
        more = len(content.contacts) - 1
        return _short(f"👤 {first}" + (f" +{more}" if more else ""))
    if isinstance(content, InteractiveContent):
        return _short(content.interactive.body.text)
    if isinstance(content, ReactionContent):
        return f"Reacted {content.emoji}" if content.emoji else "Reaction removed"
    return _short(f"Template: {content.name}")
