"""Reading Meta's webhook payloads: timestamps, envelopes, values, errors and every message type."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from layanify.whatsapp.payloads import (
    Change,
    PayloadError,
    Profile,
    changes_of,
    message_content,
    normalize_error,
    parse_messages_value,
    parse_timestamp,
    preview,
)

DATA = Path(__file__).parent.parent / "data" / "whatsapp"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
CUSTOMER = "6281234567890"
METADATA = {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


def read(doc: Any) -> list[Change]:
    """The changes of `doc` delivered as a raw body."""
    return changes_of(json.dumps(doc).encode())


def first_message(name: str) -> dict[str, Any]:
    """The first message of the first change of a stored fixture."""
    message: dict[str, Any] = load(name)["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


def inbound(kind: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    """An inbound message in Meta's shape: `type` plus an object named after the type."""
    message: dict[str, Any] = {
        "from": CUSTOMER,
        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBOTgyRDlFM0VCOTk2RjU1OUU2AA==",
        "timestamp": "1764000005",
        "type": kind,
    }
    if body is not None:
        message[kind] = body
    message.update(extra)
    return message


# --- parse_timestamp ---------------------------------------------------------------------------


def test_timestamp_as_string_of_unix_seconds_is_read_as_utc() -> None:
    assert parse_timestamp("1764000005") == datetime(2025, 11, 24, 16, 0, 5, tzinfo=UTC)


def test_timestamp_as_integer_from_sdk_fixtures_is_read_too() -> None:
    assert parse_timestamp(1764000005) == datetime(2025, 11, 24, 16, 0, 5, tzinfo=UTC)


def test_timestamp_as_float_drops_the_fraction() -> None:
    assert parse_timestamp(1764000005.9) == datetime(2025, 11, 24, 16, 0, 5, tzinfo=UTC)


def test_timestamp_with_surrounding_whitespace_is_still_read() -> None:
    assert parse_timestamp(" 1764000005 ") == datetime(2025, 11, 24, 16, 0, 5, tzinfo=UTC)


def test_timestamp_is_timezone_aware() -> None:
    parsed = parse_timestamp("0")
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert parsed == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", [True, False])
def test_boolean_is_not_a_timestamp(value: bool) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", [None, "", "soon", "1764000005abc", [], {}, "1e9", object()])
def test_garbage_timestamp_becomes_none_instead_of_failing(value: Any) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", [10**20, "99999999999999999999", float("inf"), float("nan"), -(10**20)])
def test_out_of_range_timestamp_becomes_none(value: Any) -> None:
    assert parse_timestamp(value) is None


# --- changes_of --------------------------------------------------------------------------------


def test_every_change_of_every_entry_is_read() -> None:
    changes = read(load("batch_multi"))

    # Two entries: the first carries a messages change and a statuses change, the second one more message.
    assert len(changes) == 3
    assert {(change.waba_id, change.field) for change in changes} == {(WABA_ID, "messages")}
    assert [len(change.value.get("messages", [])) for change in changes] == [2, 0, 1]
    assert [len(change.value.get("statuses", [])) for change in changes] == [0, 2, 0]


def test_several_changes_in_several_entries_keep_their_order() -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [{"field": "a", "value": {"n": 1}}, {"field": "b", "value": {"n": 2}}]},
            {"id": "2", "changes": [{"field": "c", "value": {"n": 3}}]},
        ],
    }

    changes = read(body)

    assert [(c.waba_id, c.field, c.value) for c in changes] == [
        ("1", "a", {"n": 1}),
        ("1", "b", {"n": 2}),
        ("2", "c", {"n": 3}),
    ]


def test_messages_change_has_no_entry_time() -> None:
    (change,) = read(load("text"))
    assert change.time is None


def test_integer_entry_time_of_other_fields_is_read() -> None:
    (change,) = read(load("template_status_update"))

    assert change == Change(
        waba_id=WABA_ID,
        field="message_template_status_update",
        value=change.value,
        time=datetime.fromtimestamp(1764002000, UTC),
    )
    assert change.value["event"] == "APPROVED"


def test_numeric_waba_id_is_read_as_a_string() -> None:
    (change,) = read({"entry": [{"id": 102290129340398, "changes": [{"field": "x", "value": {}}]}]})
    assert change.waba_id == WABA_ID


@pytest.mark.parametrize("body", [None, [], "entry", 42, {}, {"entry": None}, {"entry": {"id": "1"}}])
def test_body_that_is_not_a_webhook_envelope_is_refused(body: Any) -> None:
    with pytest.raises(PayloadError, match="entry"):
        read(body)


def test_empty_entry_list_yields_nothing() -> None:
    assert read({"object": "whatsapp_business_account", "entry": []}) == []


def test_non_object_entries_and_changes_are_skipped_or_emptied_without_failing() -> None:
    body = {
        "entry": [
            "not an entry",
            None,
            {"id": "1", "changes": "not a list"},
            {"id": "2", "changes": [None, 7, {"field": "messages", "value": "not an object"}]},
            {"id": "3", "changes": [{"field": "messages", "value": {"ok": True}}]},
        ]
    }

    changes = read(body)

    # Non-object changes become empty changes (field "", value {}); nothing raises.
    assert [(c.waba_id, c.field, c.value) for c in changes] == [
        ("2", "", {}),
        ("2", "", {}),
        ("2", "messages", {}),
        ("3", "messages", {"ok": True}),
    ]


def test_unreadable_entry_time_becomes_none() -> None:
    (change,) = read({"entry": [{"id": "1", "time": "later", "changes": [{"field": "x"}]}]})
    assert change.time is None


# --- parse_messages_value ----------------------------------------------------------------------


def test_messages_value_names_the_number_and_who_wrote() -> None:
    value = load("batch_multi")["entry"][0]["changes"][0]["value"]

    parsed = parse_messages_value(value)

    assert parsed.phone_number_id == PHONE_NUMBER_ID
    assert parsed.display_phone_number == "15550783881"
    assert parsed.profiles == {
        "6281234567890": Profile(wa_id="6281234567890", name="Budi Santoso", user_id=None),
        "6289876543210": Profile(wa_id="6289876543210", name="Siti Rahma", user_id=None),
    }
    assert [m["from"] for m in parsed.messages] == ["6281234567890", "6289876543210"]
    assert parsed.statuses == []
    assert parsed.errors == []


def test_business_scoped_user_id_is_kept_on_the_profile() -> None:
    value = {
        "metadata": METADATA,
        "contacts": [{"profile": {"name": "Budi"}, "wa_id": CUSTOMER, "user_id": "ID.1873026459183720461"}],
    }

    parsed = parse_messages_value(value)

    assert parsed.profiles[CUSTOMER].user_id == "ID.1873026459183720461"


def test_profile_without_name_has_an_empty_name_and_contacts_without_wa_id_are_skipped() -> None:
    value = {"metadata": METADATA, "contacts": [{"wa_id": CUSTOMER}, {"profile": {"name": "Nobody"}}, "junk"]}

    parsed = parse_messages_value(value)

    assert parsed.profiles == {CUSTOMER: Profile(wa_id=CUSTOMER, name="", user_id=None)}


def test_statuses_are_split_from_messages() -> None:
    value = load("batch_multi")["entry"][0]["changes"][1]["value"]

    parsed = parse_messages_value(value)

    assert parsed.messages == []
    assert [s["status"] for s in parsed.statuses] == ["delivered", "read"]


def test_system_level_errors_are_collected() -> None:
    value = load("interactive_value_errors")["entry"][0]["changes"][0]["value"]

    parsed = parse_messages_value(value)

    assert [e["code"] for e in parsed.errors] == [131051]
    assert len(parsed.messages) == 1


def test_value_without_metadata_still_parses_with_no_number() -> None:
    parsed = parse_messages_value({"messages": [{"type": "text"}]})

    assert parsed.phone_number_id is None
    assert parsed.display_phone_number is None
    assert parsed.messages == [{"type": "text"}]


def test_numeric_phone_number_id_in_metadata_is_read_as_a_string() -> None:
    parsed = parse_messages_value({"metadata": {"phone_number_id": 106540352242922}})
    assert parsed.phone_number_id == PHONE_NUMBER_ID


def test_malformed_lists_in_a_messages_value_are_ignored() -> None:
    value = {
        "metadata": "nope",
        "contacts": "nope",
        "messages": [{"type": "text"}, "junk", None],
        "statuses": {"not": "a list"},
        "errors": [1, {"code": 1}],
    }

    parsed = parse_messages_value(value)

    assert parsed.phone_number_id is None
    assert parsed.profiles == {}
    assert parsed.messages == [{"type": "text"}]
    assert parsed.statuses == []
    assert parsed.errors == [{"code": 1}]


# --- normalize_error ---------------------------------------------------------------------------


def test_full_error_is_normalized() -> None:
    error = load("status_failed")["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]

    assert normalize_error(error) == {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "details": "Message Undeliverable.",
        "href": "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes",
    }


def test_older_error_with_only_code_and_title_fills_the_gaps() -> None:
    assert normalize_error({"code": 131047, "title": "Re-engagement message"}) == {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "",
        "details": "",
        "href": None,
    }


def test_error_without_title_uses_its_message_as_title() -> None:
    normalized = normalize_error({"code": 131026, "message": "Message undeliverable"})

    assert normalized["title"] == "Message undeliverable"
    assert normalized["message"] == "Message undeliverable"


def test_empty_error_still_has_every_key() -> None:
    assert normalize_error({}) == {"code": None, "title": "", "message": "", "details": "", "href": None}


def test_error_code_that_is_not_an_integer_is_dropped() -> None:
    assert normalize_error({"code": "131026", "title": "x"})["code"] is None


def test_error_data_that_is_not_an_object_gives_empty_details() -> None:
    assert normalize_error({"code": 1, "error_data": "oops"})["details"] == ""


# --- message_content: each type ----------------------------------------------------------------


def test_text_message_keeps_its_body_including_emoji() -> None:
    content = message_content(first_message("text"))

    assert content == {"type": "text", "text": "Halo kak, pesanan saya sudah dikirim belum? 🙏"}


def test_text_message_without_body_has_empty_text() -> None:
    assert message_content(inbound("text", {})) == {"type": "text", "text": ""}


def test_image_keeps_media_and_caption() -> None:
    content = message_content(first_message("image"))

    assert content["type"] == "image"
    assert content["caption"] == "Bukti transfer pembayaran"
    assert content["media"]["id"] == "4388466303394700"
    assert content["media"]["mime_type"] == "image/jpeg"
    assert content["media"]["sha256"] == "YQXWzHavQAMl6U1YjOURvlv9u3O0N9xR7KQ5F9ekPj0="
    assert content["media"]["url"].startswith("https://lookaside.fbsbx.com/")
    assert "caption" not in content["media"]


def test_voice_note_is_marked_as_voice() -> None:
    content = message_content(first_message("audio_voice"))

    assert content["type"] == "audio"
    assert content["media"]["voice"] is True
    assert "caption" not in content


def test_document_keeps_its_filename_and_caption() -> None:
    content = message_content(first_message("document"))

    assert content["media"]["filename"] == "INV-2025-11-0042.pdf"
    assert content["media"]["mime_type"] == "application/pdf"
    assert content["caption"] == "Invoice bulan November"


def test_animated_sticker_is_marked_as_animated() -> None:
    content = message_content(first_message("sticker"))

    assert content["type"] == "sticker"
    assert content["media"]["animated"] is True


def test_video_without_url_keeps_what_it_has() -> None:
    body = {"id": "1166846181421424", "mime_type": "video/mp4", "sha256": "abc=", "unknown": "dropped"}

    content = message_content(inbound("video", body))

    assert content == {
        "type": "video",
        "media": {"id": "1166846181421424", "mime_type": "video/mp4", "sha256": "abc="},
    }


def test_empty_caption_is_kept_as_empty() -> None:
    content = message_content(inbound("image", {"id": "1", "caption": ""}))
    assert content["caption"] == ""


def test_location_keeps_coordinates_and_optional_names() -> None:
    content = message_content(first_message("location"))

    assert content["location"] == {
        "latitude": -6.1950823,
        "longitude": 106.8231607,
        "name": "Grand Indonesia",
        "address": "Jl. M.H. Thamrin No.1, Menteng, Jakarta Pusat 10310",
        "url": "https://www.grand-indonesia.com/",
    }


def test_location_with_only_coordinates() -> None:
    content = message_content(inbound("location", {"latitude": 1.5, "longitude": 2.5}))
    assert content == {"type": "location", "location": {"latitude": 1.5, "longitude": 2.5}}


def test_shared_contact_cards_are_kept_whole() -> None:
    message = first_message("contacts")

    content = message_content(message)

    assert content["type"] == "contacts"
    assert content["contacts"] == message["contacts"]
    assert content["contacts"][0]["name"]["formatted_name"] == "Andi Wijaya"


def test_button_reply_shows_the_chosen_title() -> None:
    content = message_content(first_message("interactive_button_reply"))

    assert content["interactive"] == {"type": "button_reply", "id": "confirm-order", "title": "Konfirmasi"}
    assert content["text"] == "Konfirmasi"
    assert content["context"]["from"] == "15550783881"


def test_list_reply_keeps_its_description() -> None:
    content = message_content(first_message("interactive_list_reply"))

    assert content["interactive"] == {
        "type": "list_reply",
        "id": "shipping_express",
        "title": "Kirim Express",
        "description": "Sampai besok, 1-2 hari kerja",
    }
    assert content["text"] == "Kirim Express"


def test_interactive_without_interactive_object_is_stored_without_failing() -> None:
    content = message_content(first_message("interactive_value_errors"))

    assert content == {"type": "interactive", "interactive": {"type": ""}}


def test_template_quick_reply_button_keeps_payload_and_text() -> None:
    content = message_content(first_message("button"))

    assert content["button"] == {"payload": "STOP_PROMO", "text": "Berhenti promo"}
    assert content["text"] == "Berhenti promo"


def test_reaction_keeps_the_emoji_and_the_message_it_reacts_to() -> None:
    content = message_content(first_message("reaction"))

    assert content["reaction"] == {
        "message_id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkFFRTAzRUFCMkM4NzIxRTg2NAA=",
        "emoji": "👍",
    }
    assert content["removed"] is False


def test_reaction_without_emoji_means_removed() -> None:
    content = message_content(first_message("reaction_removed"))

    assert content["reaction"]["emoji"] == ""
    assert content["removed"] is True


def test_reaction_with_empty_emoji_means_removed() -> None:
    content = message_content(inbound("reaction", {"message_id": "wamid.x", "emoji": ""}))
    assert content["removed"] is True


def test_order_is_kept_whole() -> None:
    message = first_message("order")

    content = message_content(message)

    assert content["order"] == message["order"]
    assert len(content["order"]["product_items"]) == 2


def test_system_message_shows_its_body() -> None:
    content = message_content(first_message("system_user_changed_user_id"))

    assert content["system"]["type"] == "user_changed_user_id"
    assert content["system"]["user_id"] == "ID.2650918374652019384"
    assert content["text"].startswith("User Budi Santoso changed")


def test_unsupported_message_keeps_its_errors_and_what_the_customer_did() -> None:
    content = message_content(first_message("unsupported"))

    assert content == {
        "type": "unsupported",
        "unsupported": {"type": "edit"},
        "errors": [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "details": "Message type is currently not supported.",
                "href": None,
            }
        ],
    }


def test_message_type_newer_than_this_code_is_kept_raw() -> None:
    message = first_message("unknown_message_type")

    content = message_content(message)

    assert content == {"type": "future_type", "raw": message["future_type"]}


def test_message_without_type_is_unknown() -> None:
    assert message_content({"from": CUSTOMER, "id": "wamid.x"}) == {"type": "unknown"}


def test_click_to_whatsapp_ad_referral_is_kept() -> None:
    message = first_message("referral")

    content = message_content(message)

    assert content["text"] == "Halo, saya mau tanya soal promo ini"
    assert content["referral"] == message["referral"]


def test_reply_context_is_kept() -> None:
    content = message_content(first_message("text_reply_context"))

    assert content["context"] == {
        "from": "15550783881",
        "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjlCNUE3MjQzNzlCOEEyRkE0NgA=",
    }


def test_forwarded_flag_in_context_is_kept() -> None:
    content = message_content(inbound("text", {"body": "fwd"}, context={"forwarded": True}))
    assert content["context"] == {"forwarded": True}


def test_type_object_that_is_not_an_object_does_not_fail() -> None:
    assert message_content(inbound("text", "plain string")) == {"type": "text", "text": ""}
    assert message_content(inbound("image", ["x"])) == {"type": "image", "media": {}}


# --- preview -----------------------------------------------------------------------------------


def test_preview_of_text_is_the_text() -> None:
    assert preview({"type": "text", "text": "Halo"}) == "Halo"


def test_preview_is_cut_at_200_characters() -> None:
    assert preview({"type": "text", "text": "a" * 500}) == "a" * 200


def test_preview_of_captioned_media_is_the_caption() -> None:
    assert preview(message_content(first_message("image"))) == "Bukti transfer pembayaran"


def test_preview_of_media_without_caption_names_the_type() -> None:
    assert preview(message_content(first_message("audio_voice"))) == "[audio]"


def test_preview_of_reaction_shows_the_emoji() -> None:
    assert preview(message_content(first_message("reaction"))) == "Reacted 👍"


def test_preview_of_removed_reaction_says_so() -> None:
    assert preview(message_content(first_message("reaction_removed"))) == "Reaction removed"


def test_preview_of_location_is_its_name_or_location() -> None:
    assert preview(message_content(first_message("location"))) == "Grand Indonesia"
    assert preview({"type": "location", "location": {"latitude": 1, "longitude": 2}}) == "Location"


def test_preview_of_button_reply_is_the_chosen_title() -> None:
    assert preview(message_content(first_message("interactive_button_reply"))) == "Konfirmasi"


def test_preview_of_an_order_is_its_note_or_order() -> None:
    assert preview(message_content(first_message("order"))) == "Tolong dikirim secepatnya ya"
    assert preview({"type": "order", "order": {"catalog_id": "1"}}) == "Order"


def test_preview_of_types_without_text_names_the_type() -> None:
    assert preview(message_content(first_message("contacts"))) == "[contacts]"
    assert preview(message_content(first_message("unknown_message_type"))) == "[future_type]"


def test_preview_of_empty_content_does_not_fail() -> None:
    assert preview({}) == "[]"
