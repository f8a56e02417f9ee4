"""Builders of Meta-shaped `messages` webhook bodies (statuses and inbound messages), serialised like Meta."""

from __future__ import annotations

import json
from typing import Any

from layanify.simulator.errors import webhook_error
from layanify.simulator.state import Number, Outbound, Pricing


def envelope(number: Number, value_key: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """`{"object":"whatsapp_business_account","entry":[{id: WABA, changes:[{value, field:"messages"}]}]}`."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": number.display_phone_number,
            "phone_number_id": number.phone_number_id,
        },
    }
    value.update(extra)
    value[value_key] = items
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": number.waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


def serialise(body: dict[str, Any]) -> bytes:
    """Compact JSON with non-ASCII as \\u escapes (emoji as surrogate pairs), as Meta sends it."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()


def status_item(
    message: Outbound, status: str, timestamp: int, pricing: Pricing | None, error_code: int | None = None
) -> dict[str, Any]:
    """One `statuses[]` item: id, status, timestamp (string), recipient_id, echoes, pricing or errors."""
    item: dict[str, Any] = {
        "id": message.wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": message.wa_id,
    }
    if message.callback_data is not None:
        item["biz_opaque_callback_data"] = message.callback_data
    if status in ("sent", "delivered") and pricing is not None:
        conversation: dict[str, Any] = {"id": pricing.id}
        if status == "sent":
            conversation["expiration_timestamp"] = str(pricing.expires_at)
        conversation["origin"] = {"type": pricing.origin}
        item["conversation"] = conversation
        item["pricing"] = _pricing(message)
    if status == "failed" and error_code is not None:
        item["errors"] = [webhook_error(error_code)]
    return item


def _pricing(message: Outbound) -> dict[str, Any]:
    # Per-message pricing (PMP): templates are billed by category; free-form replies inside the
    # customer-service window are free ("free_customer_service", category "service").
    if message.is_template:
        return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": message.category}
    return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}


def status_body(number: Number, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A webhook body carrying status items of one number."""
    return envelope(number, "statuses", items)


def inbound_body(number: Number, name: str, message: dict[str, Any]) -> dict[str, Any]:
    """A webhook body carrying one customer message, with the customer's profile in `contacts`."""
    contacts = [{"profile": {"name": name}, "wa_id": message["from"]}]
    return envelope(number, "messages", [message], contacts=contacts)
