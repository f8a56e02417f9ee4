"""Outgoing content is validated with Meta's limits and becomes exactly Meta's send body.

Each expected body is Meta's documented request example for that type, with its placeholders filled in.
Pages are under https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from layanify.whatsapp.outbound import (
    ContactsContent,
    InteractiveContent,
    MediaContent,
    TemplateContent,
    TextContent,
    build_message_body,
    build_read_body,
    content_preview,
    parse_content,
)

TO = "+16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="


def envelope(kind: str, obj: Any) -> dict[str, Any]:
    """The part every documented example shares."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": kind,
        kind: obj,
    }


def body(content: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_message_body(TO, parse_content(content), **kwargs)


def test_text() -> None:
    # .../messages/text-messages: {"text": {"preview_url": <bool>, "body": "<BODY_TEXT>"}}
    sent = body(
        {
            "type": "text",
            "text": "As requested, here's the link: https://www.meta.com/quest/quest-3/",
            "preview_url": True,
        }
    )
    assert sent == envelope(
        "text",
        {"preview_url": True, "body": "As requested, here's the link: https://www.meta.com/quest/quest-3/"},
    )


def test_reply_context_and_callback_data() -> None:
    # Messages API reference: "context": {"message_id"}, "biz_opaque_callback_data" (≤ 512 bytes)
    sent = body({"type": "text", "text": "Hi"}, reply_to_wamid=WAMID, callback_data="msg-42")
    assert sent["context"] == {"message_id": WAMID}
    assert sent["biz_opaque_callback_data"] == "msg-42"
    assert "context" not in body({"type": "text", "text": "Hi"})
    with pytest.raises(ValueError, match="512"):
        body({"type": "text", "text": "Hi"}, callback_data="x" * 513)


@pytest.mark.parametrize("text", ["", "   \n", "x" * 4097])
def test_text_limits(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_content({"type": "text", "text": text})


def test_image_by_id() -> None:
    # .../messages/image-messages: {"image": {"id": "<MEDIA_ID>", "caption": "<MEDIA_CAPTION_TEXT>"}}
    sent = body({"type": "image", "media_id": "1013859600285441", "caption": "The best succulent ever?"})
    assert sent == envelope("image", {"id": "1013859600285441", "caption": "The best succulent ever?"})


def test_image_by_link_and_seed_media_url() -> None:
    # .../messages/image-messages: {"image": {"link": "<MEDIA_URL>"}}
    url = "https://www.luckyshrub.com/assets/succulents/aloe.png"
    assert body({"type": "image", "link": url}) == envelope("image", {"link": url})
    assert body({"type": "image", "media_url": url, "text": "Aloe"}) == envelope(
        "image", {"link": url, "caption": "Aloe"}
    )


def test_document_with_filename() -> None:
    # .../messages/document-messages: {"document": {"id", "caption", "filename"}}
    sent = body(
        {
            "type": "document",
            "media_id": "1013859600285441",
            "caption": "Lucky Shrub Invoice",
            "filename": "lucky-shrub-invoice.pdf",
        }
    )
    assert sent == envelope(
        "document",
        {"id": "1013859600285441", "caption": "Lucky Shrub Invoice", "filename": "lucky-shrub-invoice.pdf"},
    )


@pytest.mark.parametrize("kind", ["audio", "sticker", "video"])
def test_other_media_by_id(kind: str) -> None:
    # .../messages/audio-messages, sticker-messages, video-messages: {"<type>": {"id": "<MEDIA_ID>"}}
    assert body({"type": kind, "media_id": "1013859600285441"}) == envelope(kind, {"id": "1013859600285441"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"type": "image"}, "exactly one of media_id or link"),
        ({"type": "image", "media_id": "1", "link": "https://a.example/x.png"}, "exactly one"),
        ({"type": "audio", "media_id": "1", "caption": "no"}, "cannot have a caption"),
        ({"type": "sticker", "media_id": "1", "caption": "no"}, "cannot have a caption"),
        ({"type": "image", "media_id": "1", "filename": "a.png"}, "only for documents"),
        ({"type": "image", "link": "ftp://a.example/x.png"}, "http"),
        ({"type": "image", "media_id": "1", "caption": "x" * 1025}, "1024"),
        ({"type": "gif", "media_id": "1"}, "does not match any of the expected tags"),
    ],
)
def test_media_rules(content: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_content(content)


def test_location() -> None:
    # .../messages/location-messages: {"location": {"latitude", "longitude", "name", "address"}}
    sent = body(
        {
            "type": "location",
            "latitude": 37.44216251868683,
            "longitude": -122.16153582049394,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
        }
    )
    assert sent == envelope(
        "location",
        {
            "latitude": 37.44216251868683,
            "longitude": -122.16153582049394,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
        },
    )
    with pytest.raises(ValidationError):
        parse_content({"type": "location", "latitude": 91, "longitude": 0})
    with pytest.raises(ValidationError):
        parse_content({"type": "location", "latitude": 0, "longitude": -180.5})


def test_contacts() -> None:
    # .../messages/contacts-messages: "contacts": [{"name": {"formatted_name", ...}, "phones": [...]}]
    card = {
        "name": {"formatted_name": "Pablo Morales", "first_name": "Pablo", "last_name": "Morales"},
        "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME", "wa_id": "19405551234"}],
    }
    sent = body({"type": "contacts", "contacts": [card]})
    assert sent == envelope("contacts", [card])
    content = parse_content({"type": "contacts", "contacts": [card]})
    assert isinstance(content, ContactsContent)
    with pytest.raises(ValidationError, match=r"contacts\[0\].name.formatted_name is required"):
        parse_content({"type": "contacts", "contacts": [{"name": {"first_name": "Pablo"}}]})
    with pytest.raises(ValidationError):
        parse_content({"type": "contacts", "contacts": []})


REPLY_BUTTONS = {
    "type": "button",
    "header": {"type": "text", "text": "Lucky Shrub"},
    "body": {"text": "Hi Pablo! Your gardening workshop is scheduled for 9am tomorrow. Still coming?"},
    "footer": {"text": "Lucky Shrub: Your gateway to succulents™"},
    "action": {
        "buttons": [
            {"type": "reply", "reply": {"id": "change-button", "title": "Change"}},
            {"type": "reply", "reply": {"id": "cancel-button", "title": "Cancel"}},
        ]
    },
}

LIST: dict[str, Any] = {
    "type": "list",
    "header": {"type": "text", "text": "Choose Shipping Option"},
    "body": {"text": "Which shipping option do you prefer?"},
    "footer": {"text": "Lucky Shrub: Your gateway to succulents™"},
    "action": {
        "button": "Shipping Options",
        "sections": [
            {
                "title": "I want it ASAP!",
                "rows": [
                    {
                        "id": "priority_express",
                        "title": "Priority Mail Express",
                        "description": "Next Day to 2 Days",
                    },
                    {"id": "priority_mail", "title": "Priority Mail", "description": "1–3 Days"},
                ],
            },
            {
                "title": "I can wait a bit",
                "rows": [
                    {
                        "id": "usps_ground_advantage",
                        "title": "USPS Ground Advantage",
                        "description": "2–5 Days",
                    }
                ],
            },
        ],
    },
}


LIST_SECTIONS = LIST["action"]["sections"]


def test_interactive_reply_buttons_in_metas_shape() -> None:
    # .../messages/interactive-reply-buttons-messages
    assert body({"type": "interactive", "interactive": REPLY_BUTTONS}) == envelope(
        "interactive", REPLY_BUTTONS
    )


def test_interactive_list_in_metas_shape() -> None:
    # .../messages/interactive-list-messages
    assert body({"type": "interactive", "interactive": LIST}) == envelope("interactive", LIST)


def test_interactive_shorthands_become_metas_objects() -> None:
    buttons = body({"type": "interactive", "body": "Pick one", "buttons": [{"id": "a", "title": "Yes"}]})
    assert buttons["interactive"] == {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "Yes"}}]},
    }
    menu = body(
        {
            "type": "interactive",
            "body": "Which shipping option do you prefer?",
            "header": "Choose Shipping Option",
            "footer": "Lucky Shrub: Your gateway to succulents™",
            "button": "Shipping Options",
            "sections": LIST_SECTIONS,
        }
    )
    assert menu == envelope("interactive", LIST)


@pytest.mark.parametrize(
    ("interactive", "message"),
    [
        ({"body": "b", "buttons": []}, "at least 1"),
        ({"body": "b", "buttons": [{"id": str(i), "title": str(i)} for i in range(4)]}, "at most 3"),
        ({"body": "b", "buttons": [{"id": "a", "title": "x" * 21}]}, "20"),
        ({"body": "b", "buttons": [{"id": "a" * 257, "title": "x"}]}, "256"),
        ({"body": "b", "buttons": [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]}, "unique"),
        ({"body": "x" * 1025, "buttons": [{"id": "a", "title": "x"}]}, "1024"),
        ({"body": "b", "footer": "x" * 61, "buttons": [{"id": "a", "title": "x"}]}, "60"),
        ({"body": "b", "header": "x" * 61, "buttons": [{"id": "a", "title": "x"}]}, "60"),
        ({"body": "  ", "buttons": [{"id": "a", "title": "x"}]}, "blank"),
        ({"body": "b", "button": "x" * 21, "sections": [{"rows": [{"id": "a", "title": "x"}]}]}, "20"),
        ({"body": "b", "button": "M", "sections": []}, "at least 1"),
        ({"body": "b", "button": "M", "sections": [{"rows": [{"id": "a", "title": "x" * 25}]}]}, "24"),
        (
            {
                "body": "b",
                "button": "M",
                "sections": [{"rows": [{"id": "a", "title": "x", "description": "d" * 73}]}],
            },
            "72",
        ),
        (
            {
                "body": "b",
                "button": "M",
                "sections": [
                    {"title": "one", "rows": [{"id": f"a{i}", "title": "x"} for i in range(6)]},
                    {"title": "two", "rows": [{"id": f"b{i}", "title": "x"} for i in range(5)]},
                ],
            },
            "at most 10 rows",
        ),
        (
            {
                "body": "b",
                "button": "M",
                "sections": [
                    {"rows": [{"id": "a", "title": "x"}]},
                    {"rows": [{"id": "b", "title": "x"}]},
                ],
            },
            "every section needs a title",
        ),
        (
            {
                "body": "b",
                "button": "M",
                "header": {"type": "image", "image": {"id": "1"}},
                "sections": [{"rows": [{"id": "a", "title": "x"}]}],
            },
            "only have a text header",
        ),
    ],
)
def test_interactive_limits(interactive: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_content({"type": "interactive", **interactive})


def test_interactive_media_header_on_buttons() -> None:
    content = parse_content(
        {
            "type": "interactive",
            "header": {"type": "image", "image": {"id": "2762702990552401"}},
            "body": "b",
            "buttons": [{"id": "a", "title": "x"}],
        }
    )
    assert isinstance(content, InteractiveContent)
    assert content.graph_object()["header"] == {"type": "image", "image": {"id": "2762702990552401"}}


def test_reaction_and_its_removal() -> None:
    # .../messages/reaction-messages: {"reaction": {"message_id": "<WHATSAPP_MESSAGE_ID>", "emoji": ...}}
    assert body({"type": "reaction", "message_id": WAMID, "emoji": "\U0001f600"}) == envelope(
        "reaction", {"message_id": WAMID, "emoji": "\U0001f600"}
    )
    assert body({"type": "reaction", "message_id": WAMID, "emoji": ""})["reaction"]["emoji"] == ""


def test_template_with_components() -> None:
    # .../messages/template-messages: {"template": {"name", "language": {"code"}, "components": [...]}}
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "2871834006348767"}}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "860198-230332"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "860198-230332"}],
        },
    ]
    sent = body(
        {"type": "template", "name": "order_delivery_update", "language": "en_US", "components": components}
    )
    assert sent == envelope(
        "template", {"name": "order_delivery_update", "language": {"code": "en_US"}, "components": components}
    )


def test_template_seed_shorthand() -> None:
    sent = body(
        {
            "type": "template",
            "template_name": "hello_world",
            "language": "id",
            "template_params": ["Budi", "12"],
        }
    )
    assert sent["template"] == {
        "name": "hello_world",
        "language": {"code": "id"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "12"}]}
        ],
    }
    plain = parse_content({"type": "template", "name": "hello_world"})
    assert isinstance(plain, TemplateContent)
    assert plain.graph_object() == {"name": "hello_world", "language": {"code": "en_US"}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"name": "t", "components": [], "template_params": []}, "not both"),
        ({"name": "t", "components": [{"parameters": []}]}, "needs a type"),
        ({"name": "t", "components": [{"type": "body", "parameters": [{"text": "x"}]}]}, "needs a type"),
        ({"name": "t", "components": [{"type": "body", "parameters": "x"}]}, "must be a list"),
        ({"name": "x" * 513}, "512"),
        ({"name": "t", "language": "english"}, "pattern"),
    ],
)
def test_template_rules(content: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_content({"type": "template", **content})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        parse_content({"type": "text", "text": "hi", "previewurl": True})


def test_read_body() -> None:
    # https://developers.facebook.com/documentation/business-messaging/whatsapp/typing-indicators/
    assert build_read_body(WAMID) == {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    assert build_read_body(WAMID, typing=True) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
        "typing_indicator": {"type": "text"},
    }


@pytest.mark.parametrize(
    ("content", "preview"),
    [
        ({"type": "text", "text": "Hello"}, "Hello"),
        ({"type": "image", "media_id": "1", "caption": "Aloe"}, "📷 Photo: Aloe"),
        ({"type": "image", "media_id": "1"}, "📷 Photo"),
        ({"type": "document", "media_id": "1", "filename": "a.pdf"}, "📄 Document: a.pdf"),
        ({"type": "location", "latitude": 1, "longitude": 2, "name": "Philz"}, "📍 Philz"),
        ({"type": "contacts", "contacts": [{"name": {"formatted_name": "Pablo"}}] * 2}, "👤 Pablo +1"),
        ({"type": "interactive", "body": "Pick one", "buttons": [{"id": "a", "title": "Y"}]}, "Pick one"),
        ({"type": "reaction", "message_id": WAMID, "emoji": "👍"}, "Reacted 👍"),
        ({"type": "reaction", "message_id": WAMID, "emoji": ""}, "Reaction removed"),
        ({"type": "template", "name": "hello_world"}, "Template: hello_world"),
    ],
)
def test_content_preview(content: dict[str, Any], preview: str) -> None:
    assert content_preview(parse_content(content)) == preview


def test_long_preview_is_cut() -> None:
    preview = content_preview(TextContent(text="x" * 300))
    assert len(preview) == 200
    assert preview.endswith("…")
    assert isinstance(parse_content({"type": "video", "link": "https://a.example/v.mp4"}), MediaContent)
