"""Processing inbound webhooks: every message type and every field, read back the way a user sees it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import MessageTemplate, WhatsAppNumber
from layanify.webhooks.tasks import WebhookWorker
from tests import factories
from tests.conftest import Tenant, WebhookPoster, fixture, stored_events

BUDI = "6281234567890"
SITI = "6289876543210"
WINDOW = timedelta(hours=24)
TEMPLATE_ID = "1689556908129832"
REJECTED_TEMPLATE_ID = "1689556908129835"
# MessageContent's declared fields, which the API always shows (null when a type does not carry them).
DECLARED_CONTENT_KEYS = {"text", "caption", "media_url", "media", "template_name", "template_params"}


def at(seconds: int) -> datetime:
    """A fixture's unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def when(value: str | None) -> datetime | None:
    """A timestamp as the API serialises it, parsed back."""
    return datetime.fromisoformat(value) if value is not None else None


def first_message(name: str) -> dict[str, Any]:
    """The first `messages[]` item of a fixture."""
    message: dict[str, Any] = fixture(name)["entry"][0]["changes"][0]["value"]["messages"][0]
    return message


def stored(content: dict[str, Any]) -> dict[str, Any]:
    """A message's content without the declared keys the API shows as null for this type."""
    return {k: v for k, v in content.items() if not (k in DECLARED_CONTENT_KEYS and v is None)}


async def get_json(client: httpx.AsyncClient, tenant: Tenant, url: str) -> Any:
    response = await client.get(url, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def conversations(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's conversations, newest activity first."""
    data: list[dict[str, Any]] = (await get_json(client, tenant, "/api/v1/conversations"))["data"]
    return data


async def conversation_of(client: httpx.AsyncClient, tenant: Tenant, wa_id: str) -> dict[str, Any]:
    """The only conversation with the customer `wa_id`."""
    matching = [c for c in await conversations(client, tenant) if c["contact"]["wa_id"] == wa_id]
    assert len(matching) == 1, matching
    return matching[0]


async def messages(client: httpx.AsyncClient, tenant: Tenant, conversation_id: int) -> list[dict[str, Any]]:
    """A conversation's messages, oldest first."""
    url = f"/api/v1/conversations/{conversation_id}/messages"
    data: list[dict[str, Any]] = (await get_json(client, tenant, url))["data"]
    return data


async def message(client: httpx.AsyncClient, tenant: Tenant, message_id: int) -> dict[str, Any]:
    """One message with its status history."""
    data: dict[str, Any] = await get_json(client, tenant, f"/api/v1/messages/{message_id}")
    return data


async def contacts(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await get_json(client, tenant, "/api/v1/contacts"))["data"]
    return data


async def events(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    """The tenant's webhook events, newest first."""
    data: list[dict[str, Any]] = (await get_json(client, tenant, "/api/v1/webhooks/events"))["data"]
    return data


async def latest_event(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    """The newest event of the tenant, in detail (with its payload)."""
    newest = (await events(client, tenant))[0]
    data: dict[str, Any] = await get_json(client, tenant, f"/api/v1/webhooks/events/{newest['id']}")
    return data


async def templates(sessionmaker: Sessionmaker) -> list[MessageTemplate]:
    async with unit_of_work(sessionmaker) as session:
        query = select(MessageTemplate).order_by(MessageTemplate.workspace_id, MessageTemplate.template_id)
        return list((await session.execute(query)).scalars())


async def number(sessionmaker: Sessionmaker, number_id: int) -> WhatsAppNumber:
    async with unit_of_work(sessionmaker) as session:
        found = await session.get(WhatsAppNumber, number_id)
        assert found is not None
        return found


async def only_message(client: httpx.AsyncClient, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    """The single conversation of the tenant and its single message (read in detail)."""
    [conversation] = await conversations(client, tenant)
    [listed] = await messages(client, tenant, conversation["id"])
    detail = await message(client, tenant, listed["id"])
    assert detail == {**listed, "status_history": []}
    return conversation, detail


# --- every inbound message type ------------------------------------------------------------------

REPLY_TO_BUSINESS = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjlCNUE3MjQzNzlCOEEyRkE0NgA="
REACTED_TO = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkFFRTAzRUFCMkM4NzIxRTg2NAA="
LOOKASIDE = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid="

# (fixture, the content the API shows, the conversation preview). Every one of these opens the window.
CUSTOMER_MESSAGES = [
    pytest.param(
        "text",
        {"type": "text", "text": "Halo kak, pesanan saya sudah dikirim belum? 🙏"},
        "Halo kak, pesanan saya sudah dikirim belum? 🙏",
        id="text",
    ),
    pytest.param(
        "text_reply_context",
        {
            "type": "text",
            "text": "Baik, saya tunggu resinya ya",
            "context": {"from": "15550783881", "id": REPLY_TO_BUSINESS},
        },
        "Baik, saya tunggu resinya ya",
        id="text_reply_context",
    ),
    pytest.param(
        "text_forwarded",
        {
            "type": "text",
            "text": "PROMO 12.12! Diskon 50% semua produk, sebarkan ke teman-teman",
            "context": {"forwarded": True},
        },
        "PROMO 12.12! Diskon 50% semua produk, sebarkan ke teman-teman",
        id="text_forwarded",
    ),
    pytest.param(
        "image",
        {
            "type": "image",
            "media": {
                "id": "4388466303394700",
                "mime_type": "image/jpeg",
                "sha256": "YQXWzHavQAMl6U1YjOURvlv9u3O0N9xR7KQ5F9ekPj0=",
                "url": LOOKASIDE + "4388466303394700&ext=1764000000&hash=7a2d543da17f3453147db562",
            },
            "caption": "Bukti transfer pembayaran",
        },
        "Bukti transfer pembayaran",
        id="image",
    ),
    pytest.param(
        "video",
        {
            "type": "video",
            "media": {
                "id": "5730082326414649",
                "mime_type": "video/mp4",
                "sha256": "DKsclhdAT68rJOIh4YnKWUWBPhTT92Y0WwnKE7vij/w=",
            },
            "caption": "Paketnya datang dalam kondisi penyok",
        },
        "Paketnya datang dalam kondisi penyok",
        id="video",
    ),
    pytest.param(
        "audio_voice",
        {
            "type": "audio",
            "media": {
                "id": "3650731422645087",
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": "ULZoWL0BODYzxQGaxHTdc86RfCfkoosya0F6t9cz3PQ=",
                "url": LOOKASIDE + "3650731422645087&ext=1764000000&hash=eecf6a6b617362503dc8b1dd",
                "voice": True,
            },
        },
        "[audio]",
        id="audio_voice",
    ),
    pytest.param(
        "document",
        {
            "type": "document",
            "media": {
                "id": "3066564596611394",
                "mime_type": "application/pdf",
                "sha256": "Q8wj+lK4e0zB0CtbEUFUFR1q3dsXyf3cBrAn+pniQAg=",
                "url": LOOKASIDE + "3066564596611394&ext=1764000000&hash=70d3b5d154e2efa8ff94228d",
                "filename": "INV-2025-11-0042.pdf",
            },
            "caption": "Invoice bulan November",
        },
        "Invoice bulan November",
        id="document",
    ),
    pytest.param(
        "sticker",
        {
            "type": "sticker",
            "media": {
                "id": "3969874303227215",
                "mime_type": "image/webp",
                "sha256": "V8SxOkxzNecvFmngUG6ZII3x2gUMEl2meLI+u1W/TGE=",
                "url": LOOKASIDE + "3969874303227215&ext=1764000000&hash=cb59ae433c42070f29591ed2",
                "animated": True,
            },
        },
        "[sticker]",
        id="sticker",
    ),
    pytest.param(
        "location",
        {
            "type": "location",
            "location": {
                "latitude": -6.1950823,
                "longitude": 106.8231607,
                "name": "Grand Indonesia",
                "address": "Jl. M.H. Thamrin No.1, Menteng, Jakarta Pusat 10310",
                "url": "https://www.grand-indonesia.com/",
            },
        },
        "Grand Indonesia",
        id="location",
    ),
    pytest.param(
        "contacts",
        {"type": "contacts", "contacts": first_message("contacts")["contacts"]},
        "[contacts]",
        id="contacts",
    ),
    pytest.param(
        "interactive_button_reply",
        {
            "type": "interactive",
            "interactive": {"type": "button_reply", "id": "confirm-order", "title": "Konfirmasi"},
            "text": "Konfirmasi",
            "context": {
                "from": "15550783881",
                "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEkQ1Njc3QkMwNjg5MzlENTQyMQA=",
            },
        },
        "Konfirmasi",
        id="interactive_button_reply",
    ),
    pytest.param(
        "interactive_list_reply",
        {
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "id": "shipping_express",
                "title": "Kirim Express",
                "description": "Sampai besok, 1-2 hari kerja",
            },
            "text": "Kirim Express",
            "context": {
                "from": "15550783881",
                "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjQzNDVBNjEyQkYyQkVENTRFRgA=",
            },
        },
        "Kirim Express",
        id="interactive_list_reply",
    ),
    pytest.param(
        "button",
        {
            "type": "button",
            "button": {"payload": "STOP_PROMO", "text": "Berhenti promo"},
            "text": "Berhenti promo",
            "context": {
                "from": "15550783881",
                "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjMyNkVFNDk5QjFBRDY3QkU0OQA=",
            },
        },
        "Berhenti promo",
        id="button",
    ),
    pytest.param(
        "reaction",
        {"type": "reaction", "reaction": {"message_id": REACTED_TO, "emoji": "👍"}, "removed": False},
        "Reacted 👍",
        id="reaction",
    ),
    pytest.param(
        "reaction_removed",
        {"type": "reaction", "reaction": {"message_id": REACTED_TO, "emoji": ""}, "removed": True},
        "Reaction removed",
        id="reaction_removed",
    ),
    pytest.param(
        "order",
        {
            "type": "order",
            "order": {
                "catalog_id": "194836987003835",
                "text": "Tolong dikirim secepatnya ya",
                "product_items": [
                    {
                        "product_retailer_id": "kopi-gayo-250g",
                        "quantity": 2,
                        "item_price": 85000,
                        "currency": "IDR",
                    },
                    {
                        "product_retailer_id": "teh-melati-100g",
                        "quantity": 1,
                        "item_price": 32500,
                        "currency": "IDR",
                    },
                ],
            },
        },
        "Tolong dikirim secepatnya ya",
        id="order",
    ),
    pytest.param(
        "referral",
        {
            "type": "text",
            "text": "Halo, saya mau tanya soal promo ini",
            "referral": first_message("referral")["referral"],
        },
        "Halo, saya mau tanya soal promo ini",
        id="referral",
    ),
    pytest.param(
        "referred_product",
        {
            "type": "text",
            "text": "Apakah produk ini masih ada stok?",
            "context": {
                "from": "15550783881",
                "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjZGN0FGRDkxRUNGNDI0MURBOQA=",
                "referred_product": {
                    "catalog_id": "194836987003835",
                    "product_retailer_id": "kopi-gayo-250g",
                },
            },
        },
        "Apakah produk ini masih ada stok?",
        id="referred_product",
    ),
    pytest.param(
        "text_integer_timestamp",
        {"type": "text", "text": "Ini pesan dengan timestamp integer"},
        "Ini pesan dengan timestamp integer",
        id="text_integer_timestamp",
    ),
    pytest.param(
        "text_with_user_id",
        {"type": "text", "text": "Halo, saya sudah pakai username sekarang"},
        "Halo, saya sudah pakai username sekarang",
        id="text_with_user_id",
    ),
    pytest.param(
        "unknown_message_type",
        {"type": "future_type", "raw": {"some_field": "some value", "nested": {"count": 3, "flag": True}}},
        "[future_type]",
        id="unknown_message_type",
    ),
]


@pytest.mark.parametrize(("name", "content", "preview"), CUSTOMER_MESSAGES)
async def test_customer_message_is_stored_with_everything_its_type_carries(
    webhook: WebhookPoster,
    client: httpx.AsyncClient,
    tenant: Tenant,
    name: str,
    content: dict[str, Any],
    preview: str,
) -> None:
    source = first_message(name)
    sent_at = at(int(source["timestamp"]))
    await webhook.deliver(name)

    conversation, stored_message = await only_message(client, tenant)
    assert stored(stored_message["content"]) == content
    assert stored_message["wamid"] == source["id"]
    assert stored_message["direction"] == "inbound"
    assert stored_message["status"] == "received"
    assert when(stored_message["timestamp"]) == sent_at
    context_id = content.get("context", {}).get("id")
    assert stored_message["reply_to_wamid"] == context_id
    assert stored_message["error"] is None
    assert stored_message["conversation_id"] == conversation["id"]

    assert conversation["contact"]["wa_id"] == BUDI
    assert conversation["contact"]["profile_name"] == "Budi Santoso"
    assert conversation["number_id"] == tenant.number_id
    assert conversation["status"] == "open"
    assert conversation["last_message_preview"] == preview
    assert when(conversation["last_message_at"]) == sent_at
    assert when(conversation["last_inbound_at"]) == sent_at
    assert when(conversation["window_expires_at"]) == sent_at + WINDOW
    assert conversation["unread_count"] == 1

    event = await latest_event(client, tenant)
    assert event["status"] == "processed"
    assert event["fields"] == ["messages"]
    assert event["summary"]["counts"] == {"messages": 1}
    assert event["summary"]["message_ids"] == [stored_message["id"]]
    assert event["summary"]["errors"] == []


async def test_reply_points_at_the_business_message_it_quotes(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text_reply_context", "text_forwarded")
    [conversation] = await conversations(client, tenant)
    reply, forwarded = await messages(client, tenant, conversation["id"])
    assert reply["reply_to_wamid"] == REPLY_TO_BUSINESS
    assert reply["content"]["context"] == {"from": "15550783881", "id": REPLY_TO_BUSINESS}
    # A forwarded message quotes nothing: only the flag is kept.
    assert forwarded["reply_to_wamid"] is None
    assert forwarded["content"]["context"] == {"forwarded": True}


async def test_reaction_and_its_removal_are_two_messages_about_the_same_business_message(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("reaction", "reaction_removed")
    [conversation] = await conversations(client, tenant)
    added, removed = await messages(client, tenant, conversation["id"])
    assert added["content"]["reaction"] == {"message_id": REACTED_TO, "emoji": "👍"}
    assert added["content"]["removed"] is False
    assert removed["content"]["reaction"]["message_id"] == REACTED_TO
    assert removed["content"]["removed"] is True
    assert conversation["last_message_preview"] == "Reaction removed"
    assert conversation["unread_count"] == 2


async def test_integer_timestamp_is_read_like_a_string_one(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert first_message("text_integer_timestamp")["timestamp"] == 1764001460  # really an int in the fixture
    await webhook.deliver("text_integer_timestamp")
    conversation, stored_message = await only_message(client, tenant)
    assert stored_message["timestamp"].startswith("2025-11-24T16:24:20")
    assert when(stored_message["timestamp"]) == at(1764001460)
    assert when(conversation["window_expires_at"]) == at(1764001460) + WINDOW


async def test_business_scoped_user_id_is_kept_on_the_contact(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text_with_user_id")
    [contact] = await contacts(client, tenant)
    assert contact["wa_id"] == BUDI
    assert contact["user_id"] == "ID.1873026459183720461"
    assert contact["profile_name"] == "Budi Santoso"


async def test_unknown_message_type_keeps_its_type_and_raw_object(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("unknown_message_type")
    _, stored_message = await only_message(client, tenant)
    assert stored_message["content"]["type"] == "future_type"
    assert stored_message["content"]["raw"] == first_message("unknown_message_type")["future_type"]
    event = await latest_event(client, tenant)
    assert event["status"] == "processed"
    assert event["last_error"] is None


async def test_unsupported_message_keeps_meta_error_code(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("unsupported")
    conversation, stored_message = await only_message(client, tenant)
    assert stored_message["wamid"] == first_message("unsupported")["id"]
    assert stored_message["content"]["type"] == "unsupported"
    assert stored_message["content"]["errors"] == [
        {
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "details": "Message type is currently not supported.",
            "href": None,
        }
    ]
    source = first_message("unsupported")
    # What the customer did (here: edited a message) is kept for the agent.
    assert stored_message["content"]["unsupported"] == source["unsupported"] == {"type": "edit"}
    assert when(stored_message["timestamp"]) == at(1764001220)
    assert conversation["last_message_preview"] == "[unsupported]"
    # The customer did write: the window opens and it counts as unread.
    assert conversation["unread_count"] == 1
    assert when(conversation["window_expires_at"]) == at(1764001220) + WINDOW
    assert (await latest_event(client, tenant))["status"] == "processed"


async def test_interactive_without_its_object_is_stored_and_the_value_error_reported(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("interactive_value_errors")
    conversation, stored_message = await only_message(client, tenant)
    assert stored_message["wamid"] == "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFDNBNDYyRkQxODM2Mzk2NkVEODcyAA=="
    assert stored_message["content"]["type"] == "interactive"
    assert stored_message["content"]["text"] is None
    assert when(stored_message["timestamp"]) == at(1764001400)
    assert conversation["last_message_preview"] == "[interactive]"

    event = await latest_event(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"messages": 1}
    assert event["summary"]["errors"] == [
        {
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "details": "Message type is currently not supported.",
            "href": "/documentation/business-messaging/whatsapp/support/error-codes",
        }
    ]


# --- system messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "wa_id"),
    [("system_number_changed", BUDI), ("system_user_changed_number", SITI)],
)
async def test_system_message_is_shown_but_neither_opens_the_window_nor_counts_as_unread(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, name: str, wa_id: str
) -> None:
    source = first_message(name)
    await webhook.deliver(name)
    conversation, stored_message = await only_message(client, tenant)
    assert conversation["contact"]["wa_id"] == wa_id
    assert stored(stored_message["content"]) == {
        "type": "system",
        "system": source["system"],
        "text": source["system"]["body"],
    }
    assert when(stored_message["timestamp"]) == at(int(source["timestamp"]))
    assert conversation["last_message_preview"] == source["system"]["body"]
    assert when(conversation["last_message_at"]) == at(int(source["timestamp"]))
    assert conversation["unread_count"] == 0
    assert conversation["last_inbound_at"] is None
    assert conversation["window_expires_at"] is None
    assert conversation["window_open"] is False


async def test_system_message_after_a_customer_message_leaves_window_and_unread_alone(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text", "system_number_changed")
    conversation = await conversation_of(client, tenant, BUDI)
    assert [m["content"]["type"] for m in await messages(client, tenant, conversation["id"])] == [
        "text",
        "system",
    ]
    assert conversation["unread_count"] == 1
    assert when(conversation["last_inbound_at"]) == at(1764000005)
    assert when(conversation["window_expires_at"]) == at(1764000005) + WINDOW
    # It is still the latest thing that happened in the thread.
    assert (
        conversation["last_message_preview"]
        == "User Budi Santoso changed from 6281234567890 to 6281355512345"
    )
    assert when(conversation["last_message_at"]) == at(1764001100)
    # No contacts[] in a system message: the profile name already known is not erased.
    assert conversation["contact"]["profile_name"] == "Budi Santoso"


async def test_user_id_change_updates_the_known_contact_and_lands_in_its_conversation(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text_with_user_id", "system_user_changed_user_id")

    [contact] = await contacts(client, tenant)
    assert contact["wa_id"] == BUDI
    assert contact["user_id"] == "ID.2650918374652019384"
    [conversation] = await conversations(client, tenant)
    text, system = await messages(client, tenant, conversation["id"])  # the change came after the text
    source = first_message("system_user_changed_user_id")
    assert system["wamid"] == source["id"]
    assert stored(system["content"]) == {
        "type": "system",
        "system": source["system"],
        "text": source["system"]["body"],
    }
    assert when(system["timestamp"]) == at(1764001600)
    assert text["content"]["text"] == "Halo, saya sudah pakai username sekarang"
    # Not the customer writing: the window and the unread count are the text's.
    assert conversation["unread_count"] == 1
    assert when(conversation["window_expires_at"]) == at(1764001520) + WINDOW
    # …but as the newest item of the thread, the notice is what the list previews.
    assert conversation["last_message_preview"] == source["system"]["body"]

    event = await latest_event(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"messages": 1}
    assert event["summary"]["message_ids"] == [system["id"]]


async def test_user_id_change_for_an_unknown_contact_is_recorded_and_nothing_crashes(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text", "system_user_changed_user_id")  # Budi is known, but not by his user id

    [conversation] = await conversations(client, tenant)
    assert [m["content"]["type"] for m in await messages(client, tenant, conversation["id"])] == ["text"]
    [contact] = await contacts(client, tenant)
    assert contact["user_id"] is None

    event = await latest_event(client, tenant)
    assert event["status"] == "processed"
    assert event["last_error"] is None
    assert event["summary"]["counts"] == {"senderless_unmatched": 1}
    assert event["summary"]["message_ids"] == []
    wamid = first_message("system_user_changed_user_id")["id"]
    assert any(wamid in note for note in event["summary"]["ignored"]), event["summary"]["ignored"]


async def test_user_id_change_alone_creates_nothing(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("system_user_changed_user_id")
    assert await conversations(client, tenant) == []
    assert await contacts(client, tenant) == []
    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"senderless_unmatched": 1}


# --- contacts and conversations --------------------------------------------------------------------


async def test_same_customer_reuses_contact_and_conversation(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    await webhook.deliver("image")

    [contact] = await contacts(client, tenant)
    assert (contact["wa_id"], contact["profile_name"]) == (BUDI, "Budi Santoso")
    [conversation] = await conversations(client, tenant)
    assert conversation["contact"]["id"] == contact["id"]
    listed = await messages(client, tenant, conversation["id"])
    assert [m["wamid"] for m in listed] == [first_message("text")["id"], first_message("image")["id"]]
    assert conversation["unread_count"] == 2
    assert conversation["last_message_preview"] == "Bukti transfer pembayaran"
    assert when(conversation["last_message_at"]) == at(1764000320)
    assert when(conversation["window_expires_at"]) == at(1764000320) + WINDOW


async def test_a_later_profile_name_replaces_the_old_one(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    await webhook.deliver(
        factories.text_message(
            "wamid.rename-1", "Sudah ganti nama", name="Budi S. (Toko Kopi)", timestamp=1764003000
        )
    )
    [contact] = await contacts(client, tenant)
    assert contact["profile_name"] == "Budi S. (Toko Kopi)"
    [conversation] = await conversations(client, tenant)
    assert conversation["contact"]["profile_name"] == "Budi S. (Toko Kopi)"
    assert len(await messages(client, tenant, conversation["id"])) == 2


async def test_redelivered_message_is_stored_and_counted_once(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text", "text")
    conversation, _ = await only_message(client, tenant)
    assert conversation["unread_count"] == 1
    newest, oldest = await events(client, tenant)
    assert oldest["summary"]["counts"] == {"messages": 1}
    assert newest["summary"]["counts"] == {"duplicate_messages": 1}
    assert newest["status"] == "processed"


async def test_window_moves_forward_with_a_newer_message(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    await webhook.deliver(factories.text_message("wamid.later-1", "Halo lagi", timestamp=1764050000))
    [conversation] = await conversations(client, tenant)
    assert when(conversation["last_inbound_at"]) == at(1764050000)
    assert when(conversation["window_expires_at"]) == at(1764050000) + WINDOW
    assert conversation["last_message_preview"] == "Halo lagi"
    assert conversation["unread_count"] == 2


async def test_an_older_message_arriving_late_never_moves_the_window_back(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    newer, older = 1764100000, 1764050000
    await webhook.deliver(factories.text_message("wamid.newer-1", "Pesan terbaru", timestamp=newer))
    await webhook.deliver(
        factories.text_message("wamid.older-1", "Pesan lama yang terlambat", timestamp=older)
    )

    [conversation] = await conversations(client, tenant)
    assert when(conversation["window_expires_at"]) == at(newer) + WINDOW
    assert when(conversation["last_inbound_at"]) == at(newer)
    assert when(conversation["last_message_at"]) == at(newer)
    assert conversation["last_message_preview"] == "Pesan terbaru"
    assert conversation["unread_count"] == 2
    # The thread is still told in the customer's order.
    listed = await messages(client, tenant, conversation["id"])
    assert [m["content"]["text"] for m in listed] == ["Pesan lama yang terlambat", "Pesan terbaru"]


async def test_window_is_open_for_24_hours_after_the_last_inbound_message(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    with time_machine.travel(at(1764000005) + timedelta(hours=23, minutes=59), tick=False):
        assert (await conversations(client, tenant))[0]["window_open"] is True
    with time_machine.travel(at(1764000005) + timedelta(hours=24, seconds=1), tick=False):
        assert (await conversations(client, tenant))[0]["window_open"] is False


async def test_concurrent_workers_on_one_conversation_lose_no_update(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    # Several workers (SKIP LOCKED hands each its own event) processing messages of the same customer,
    # delivered newest first (out of order, as Meta may): "Pesan 0" is the newest.
    count = 10
    newest = 1764000000 + count
    for i in range(count):
        body = factories.text_message(f"wamid.burst-{i}", f"Pesan {i}", timestamp=newest - i)
        assert (await webhook.post(body)).status_code == 200
    one_event_each = webhook.settings.model_copy(update={"worker_batch_size": 1})
    workers = [WebhookWorker(sessionmaker, one_event_each) for _ in range(count)]
    await asyncio.gather(*(w.process_due_batch() for w in workers))
    await webhook.process()

    [conversation] = await conversations(client, tenant)
    assert len(await messages(client, tenant, conversation["id"])) == count
    assert conversation["unread_count"] == count
    assert conversation["last_message_preview"] == "Pesan 0"
    assert when(conversation["window_expires_at"]) == at(newest) + WINDOW


async def test_redelivered_old_message_does_not_undo_a_user_id_change(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text_with_user_id", "system_user_changed_user_id")
    await webhook.deliver("text_with_user_id")  # Meta retries a delivery it already made: a duplicate
    assert (await latest_event(client, tenant))["summary"]["counts"] == {"duplicate_messages": 1}
    [contact] = await contacts(client, tenant)
    assert contact["user_id"] == "ID.2650918374652019384"


# --- several entries, changes, messages and statuses in one POST ----------------------------------


async def test_batch_handles_every_entry_change_message_and_status(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("batch_multi")

    assert {(c["wa_id"], c["profile_name"]) for c in await contacts(client, tenant)} == {
        (BUDI, "Budi Santoso"),
        (SITI, "Siti Rahma"),
    }
    siti, budi = await conversations(client, tenant)  # Siti's image is the newest activity
    assert siti["contact"]["wa_id"] == SITI
    assert budi["contact"]["wa_id"] == BUDI

    budi_messages = await messages(client, tenant, budi["id"])
    assert [m["content"]["text"] for m in budi_messages] == ["Kak, ongkirnya ke Surabaya berapa?"]
    assert budi["unread_count"] == 1
    assert when(budi["window_expires_at"]) == at(1764001600) + WINDOW

    siti_messages = await messages(client, tenant, siti["id"])
    assert [m["content"]["type"] for m in siti_messages] == ["text", "image"]
    assert siti_messages[0]["content"]["text"] == "Selamat siang, toko buka jam berapa?"
    assert siti_messages[1]["content"]["caption"] == "Ini foto produknya"
    assert siti_messages[1]["content"]["media"]["id"] == "7452941932092113"
    assert siti["unread_count"] == 2
    assert siti["last_message_preview"] == "Ini foto produknya"
    assert when(siti["window_expires_at"]) == at(1764001604) + WINDOW

    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"messages": 3, "statuses_unmatched": 2}
    assert sorted(event["summary"]["message_ids"]) == sorted(m["id"] for m in budi_messages + siti_messages)


# --- fields other than messages --------------------------------------------------------------------


async def test_template_approval_is_recorded(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("template_status_update")
    [template] = await templates(sessionmaker)
    assert template.workspace_id == tenant.workspace_id
    assert template.waba_id == factories.FIXTURE_WABA_ID
    assert template.template_id == TEMPLATE_ID
    assert (template.name, template.language) == ("konfirmasi_pesanan", "id")
    assert template.status == "APPROVED"
    assert template.reason is None  # Meta's "NONE"
    assert template.last_event == fixture("template_status_update")["entry"][0]["changes"][0]["value"]

    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["fields"] == ["message_template_status_update"]
    assert event["summary"]["counts"] == {"templates": 1}


async def test_template_rejection_keeps_the_reason(
    webhook: WebhookPoster, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("template_status_rejected")
    [template] = await templates(sessionmaker)
    assert template.template_id == REJECTED_TEMPLATE_ID
    assert template.name == "keranjang_tertinggal"
    assert template.status == "REJECTED"
    assert template.reason == "INVALID_FORMAT"


async def test_template_quality_update_lands_on_the_same_template(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("template_status_update", "template_quality_update")
    [template] = await templates(sessionmaker)
    assert template.template_id == TEMPLATE_ID
    assert template.quality_score == "YELLOW"
    assert template.status == "APPROVED"  # the quality update does not touch the status
    newest = (await events(client, tenant))[0]
    assert newest["fields"] == ["message_template_quality_update"]
    assert newest["summary"]["counts"] == {"templates": 1}


async def test_phone_number_quality_update_sets_the_messaging_limit_of_that_number_only(
    webhook: WebhookPoster,
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    sessionmaker: Sessionmaker,
) -> None:
    await webhook.deliver("phone_number_quality_update")
    updated = await number(sessionmaker, tenant.number_id)
    assert updated.messaging_limit == "TIER_UNLIMITED"
    assert updated.last_quality_event == {
        "display_phone_number": "15550783881",
        "event": "THROUGHPUT_UPGRADE",
        "current_limit": "TIER_UNLIMITED",
        "max_daily_conversations_per_business": "TIER_2K",
    }
    assert updated.last_event_at is not None
    # Same WABA, other display number: untouched.
    untouched = await number(sessionmaker, other_tenant.number_id)
    assert untouched.messaging_limit is None
    assert untouched.last_quality_event is None

    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"numbers_updated": 1}


async def test_account_update_sets_the_account_status(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("account_update")
    updated = await number(sessionmaker, tenant.number_id)
    assert updated.account_status == "DISABLED_UPDATE"
    assert updated.last_account_event == {
        "event": "DISABLED_UPDATE",
        "ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE", "waba_ban_date": "November 28, 2025"},
    }
    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["fields"] == ["account_update"]
    assert event["summary"]["counts"] == {"numbers_updated": 1}


async def test_oversized_values_in_number_and_template_updates_are_cut_to_fit_and_kept_whole_in_the_event(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    """Meta's values here are short enums; an odd long one must not make the event fail on PostgreSQL
    (varchar lengths are enforced there) and be retried until it gives up with a database error."""
    long = "X" * 300
    quality = fixture("phone_number_quality_update")
    quality["entry"][0]["changes"][0]["value"].update(current_limit=long, new_quality_rating=long)
    account = fixture("account_update")
    account["entry"][0]["changes"][0]["value"]["event"] = long
    template = fixture("template_status_update")
    template["entry"][0]["changes"][0]["value"].update(
        event=long, message_template_language=long, message_template_name=long * 2
    )
    template_quality = fixture("template_quality_update")
    template_quality["entry"][0]["changes"][0]["value"]["new_quality_score"] = long
    await webhook.deliver(quality, account, template_quality, template)

    assert [(e["status"], e["attempts"], e["last_error"]) for e in await events(client, tenant)] == [
        ("processed", 1, None)
    ] * 4
    updated = await number(sessionmaker, tenant.number_id)
    assert (updated.messaging_limit, updated.quality_rating, updated.account_status) == (
        long[:64],
        long[:16],
        long[:64],
    )
    assert updated.last_quality_event is not None
    assert updated.last_quality_event["current_limit"] == long  # the whole value, as Meta sent it
    [stored] = await templates(sessionmaker)
    assert (stored.status, stored.language, stored.quality_score) == (long[:32], long[:16], long[:32])
    assert stored.name == (long * 2)[:512]
    assert stored.last_event is not None
    assert stored.last_event["message_template_language"] == long


async def test_a_template_id_too_long_to_be_meta_s_is_ignored_not_retried(
    webhook: WebhookPoster, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    template = fixture("template_status_update")
    template["entry"][0]["changes"][0]["value"]["message_template_id"] = "9" * 65
    await webhook.deliver(template)
    assert await templates(sessionmaker) == []  # cutting it could land on another template
    [event] = await stored_events(sessionmaker)
    assert (event.status, event.attempts, event.last_error) == ("processed", 1, None)


async def test_marketing_stop_is_shown_on_the_contact(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("user_preferences")
    [contact] = await contacts(client, tenant)
    assert (contact["wa_id"], contact["profile_name"]) == (BUDI, "Budi Santoso")
    assert contact["marketing_opt_out"] is True
    assert await conversations(client, tenant) == []  # a preference is not a message
    [event] = await events(client, tenant)
    assert event["status"] == "processed"
    assert event["summary"]["counts"] == {"preferences": 1}


async def test_marketing_stop_applies_to_the_existing_contact(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await webhook.deliver("text")
    assert [c["marketing_opt_out"] for c in await contacts(client, tenant)] == [False]
    await webhook.deliver("user_preferences")
    [contact] = await contacts(client, tenant)
    assert contact["marketing_opt_out"] is True
    [conversation] = await conversations(client, tenant)
    assert conversation["contact"]["marketing_opt_out"] is True


async def test_unknown_field_is_processed_and_ignored_by_name(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    await webhook.deliver("unknown_field")
    [event] = await stored_events(sessionmaker)
    assert event.status == "processed"
    assert event.last_error is None
    assert event.fields == "some_future_field"
    assert event.summary is not None
    assert any("some_future_field" in note for note in event.summary["ignored"]), event.summary
    assert event.summary["counts"] == {}
    assert await conversations(client, tenant) == []


async def test_unknown_phone_number_id_is_recorded_and_does_not_stop_the_batch(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    for body in ("unknown_phone_number_id", "text"):
        assert (await webhook.post(body)).status_code == 200
    # One worker batch claims both; the unknown number comes first.
    assert await WebhookWorker(sessionmaker, webhook.settings).process_due_batch() == 2

    unknown, known = await stored_events(sessionmaker)
    assert unknown.status == "processed"
    assert unknown.last_error is None
    assert unknown.workspace_id is None
    assert unknown.summary is not None
    assert unknown.summary["unknown_phone_number_ids"] == ["999999999999999"]
    assert unknown.summary["counts"] == {"skipped_unknown_number": 1}
    assert unknown.summary["message_ids"] == []

    assert known.status == "processed"
    assert known.workspace_id == tenant.workspace_id
    # Only the message to our number became a conversation.
    conversation, stored_message = await only_message(client, tenant)
    assert stored_message["content"]["text"] == "Halo kak, pesanan saya sudah dikirim belum? 🙏"
    assert conversation["contact"]["wa_id"] == BUDI
    # The unknown number's event is no workspace's: the tenant's log shows only its own.
    assert [e["id"] for e in await events(client, tenant)] == [known.id]


async def test_oversized_names_and_types_are_stored_bounded_not_failed(
    webhook: WebhookPoster, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = factories.text_message("wamid.long-fields", "hai", name="N" * 400)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["type"] = "a_type_name_far_longer_than_any_meta_has_used_so_far"
    message[message["type"]] = {"some": "thing"}
    await webhook.deliver(body)
    assert (await latest_event(client, tenant))["status"] == "processed"
    [contact] = await contacts(client, tenant)
    assert contact["profile_name"] == "N" * 256
    _, stored_message = await only_message(client, tenant)
    assert stored_message["content"]["type"] == message["type"][:32]
    assert stored_message["content"]["raw"] == {"some": "thing"}
