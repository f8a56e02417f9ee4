"""How each stored message looks in the conversation view (pure: no database, no HTML)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from layanify.messaging.models import Message
from layanify.web.i18n import choose_language
from layanify.web.present import bubble, bubbles

AT = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def message(
    content: dict[str, Any], *, direction: str = "inbound", status: str = "received", **extra: Any
) -> Message:
    fields: dict[str, Any] = {
        "id": extra.pop("id", 1),
        "wamid": extra.pop("wamid", "wamid.1"),
        "direction": direction,
        "type": content["type"],
        "content": content,
        "status": status,
        "timestamp": AT,
        "is_automated": extra.pop("is_automated", False),
    }
    fields.update(extra)
    return Message(**fields)


def test_text_keeps_markup_as_plain_text() -> None:
    view = bubble(message({"type": "text", "text": "<img src=x onerror=alert(1)>"}))
    assert view.text == "<img src=x onerror=alert(1)>"  # escaping is the template's job; nothing is dropped
    assert view.summary.startswith("<img")


def test_media_shows_our_copy_with_caption_filename_and_size() -> None:
    view = bubble(
        message(
            {
                "type": "document",
                "media": {
                    "id": "1",
                    "mime_type": "application/pdf",
                    "filename": "invoice.pdf",
                    "file_size": 2048,
                },
                "caption": "Tagihan",
                "media_url": "/api/v1/media/5/content",
            }
        )
    )
    assert (view.media_url, view.filename, view.file_size, view.caption) == (
        "/api/v1/media/5/content",
        "invoice.pdf",
        2048,
        "Tagihan",
    )
    voice = bubble(message({"type": "audio", "media": {"id": "2", "mime_type": "audio/ogg", "voice": True}}))
    assert voice.voice is True
    assert voice.media_url is None  # not downloaded yet


def test_location_contacts_interactive_and_button() -> None:
    place = bubble(
        message({"type": "location", "location": {"latitude": -6.2, "longitude": 106.8, "name": "Rumah"}})
    )
    assert place.location == {"latitude": -6.2, "longitude": 106.8, "name": "Rumah"}
    assert place.map_url is not None
    assert "-6.2" in place.map_url
    people = bubble(
        message(
            {
                "type": "contacts",
                "contacts": [{"name": {"formatted_name": "Siti"}, "phones": [{"phone": "+62 812"}]}],
            }
        )
    )
    assert people.contacts == [{"name": "Siti", "phone": "+62 812"}]
    choice = bubble(
        message(
            {"type": "interactive", "interactive": {"type": "list_reply", "id": "m", "title": "Ukuran M"}}
        )
    )
    assert choice.choice == "Ukuran M"
    button = bubble(
        message({"type": "button", "button": {"payload": "STOP", "text": "Berhenti"}, "text": "Berhenti"})
    )
    assert button.choice == "Berhenti"


def test_system_and_unsupported_are_explained() -> None:
    system = bubble(message({"type": "system", "system": {"body": "Nomor pelanggan berganti"}}))
    assert system.system is True
    assert system.text == "Nomor pelanggan berganti"
    unsupported = bubble(
        message({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]})
    )
    assert unsupported.unsupported is not None
    assert "Message type unknown" in unsupported.unsupported


def test_a_failed_message_carries_its_reason_and_remedy() -> None:
    failed = bubble(
        message(
            {"type": "text", "text": "Halo"},
            direction="outbound",
            status="failed",
            error_code=131047,
            error_title="Re-engagement message",
            error_details="More than 24 hours have passed",
            error_action="send_template",
        )
    )
    assert failed.failure is not None
    assert failed.failure["title"] == "Re-engagement message"
    assert failed.failure["code"] == "131047"
    assert failed.failure["remedy"]


def test_reactions_sit_on_their_message_and_replies_quote_the_original() -> None:
    original = message({"type": "text", "text": "Kaos hitam ada?"}, id=1, wamid="wamid.A")
    reply = message(
        {"type": "text", "text": "Ada kak"},
        id=2,
        wamid="wamid.B",
        direction="outbound",
        status="read",
        reply_to_wamid="wamid.A",
    )
    liked = message(
        {"type": "reaction", "reaction": {"message_id": "wamid.B", "emoji": "👍"}}, id=3, wamid="wamid.C"
    )
    unliked = message(
        {"type": "reaction", "reaction": {"message_id": "wamid.A", "emoji": "❤"}}, id=4, wamid="wamid.D"
    )
    removed = message(
        {"type": "reaction", "reaction": {"message_id": "wamid.A", "emoji": ""}, "removed": True},
        id=5,
        wamid="wamid.E",
    )
    shown = bubbles([original, reply, liked, unliked, removed])
    assert [b.id for b in shown] == [1, 2]
    assert shown[1].quote == "Kaos hitam ada?"
    assert shown[1].reactions == ["👍"]
    assert shown[0].reactions == []  # the customer's reaction was removed


def test_language_follows_the_users_choice_then_the_browser_then_indonesian() -> None:
    assert choose_language("en", "id-ID") == "en"
    assert choose_language(None, "en-US,en;q=0.9") == "en"
    assert choose_language(None, "id-ID,id;q=0.9,en;q=0.8") == "id"
    assert choose_language(None, "fr-FR") == "id"
    assert choose_language("xx", None) == "id"
