"""Graph objects as Meta answers them: phone numbers, media metadata, template pages, subscribed apps."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request

from layanify.simulator.errors import GraphError, invalid_parameter
from layanify.simulator.media import Media
from layanify.simulator.state import Number, Template

# What `GET /{phone_number_id}` answers without `fields`, as Meta's phone-number reference lists.
DEFAULT_NUMBER_FIELDS = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "last_onboarded_time",
    "webhook_configuration",
    "id",
)
SIMULATOR_APP_ID = "1000000000000001"
SIMULATOR_APP_NAME = "Layanify Simulator"
DEFAULT_TEMPLATE_LIMIT = 25


def _all_number_fields(number: Number) -> dict[str, Any]:
    return {
        "id": number.phone_number_id,
        "verified_name": number.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": number.display_phone_number,
        "quality_rating": number.quality_rating,
        "platform_type": "CLOUD_API",
        "throughput": {"level": number.throughput_level},
        "last_onboarded_time": "2025-11-24T08:00:00+0000",
        "webhook_configuration": {"application": "https://simulator.invalid/webhook"},
        "name_status": "APPROVED",
        "new_name_status": "NONE",
        "status": "CONNECTED",
        "account_mode": "LIVE",
        "is_official_business_account": False,
        "is_pin_enabled": False,
        "messaging_limit_tier": "TIER_1K",
        "search_visibility": "VISIBLE",
    }


def number_fields(number: Number, fields: str | None) -> dict[str, Any]:
    """The phone number with the requested `fields` (comma separated), or Meta's default set."""
    every = _all_number_fields(number)
    wanted = [f.strip() for f in fields.split(",") if f.strip()] if fields else list(DEFAULT_NUMBER_FIELDS)
    unknown = [f for f in wanted if f not in every]
    if unknown:
        raise GraphError(
            100,
            "Tried accessing nonexisting field",
            message=f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type "
            "(WhatsAppBusinessPhoneNumber)",
        )
    answer = {f: every[f] for f in wanted}
    answer["id"] = number.phone_number_id  # Graph always returns the id
    return answer


def media_info(media: Media, base_url: str) -> dict[str, Any]:
    """`GET /{media_id}`: a URL on this simulator (downloaded with the bearer token) and metadata."""
    return {
        "messaging_product": "whatsapp",
        "url": f"{base_url.rstrip('/')}/_sim/media/{media.id}?mid={media.id}&hash={media.sha256_hex[:24]}",
        "mime_type": media.mime_type,
        "sha256": media.sha256_hex,
        "file_size": len(media.content),
        "id": media.id,
    }


def subscribed_apps(subscribed: bool) -> dict[str, Any]:
    """`GET /{waba_id}/subscribed_apps`."""
    if not subscribed:
        return {"data": []}
    app = {
        "link": f"https://www.facebook.com/games/?app_id={SIMULATOR_APP_ID}",
        "name": SIMULATOR_APP_NAME,
        "id": SIMULATOR_APP_ID,
    }
    return {"data": [{"whatsapp_business_api_data": app}]}


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"tpl:{index}".encode()).decode()


def _from_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("tpl:")) + 1
    except ValueError:
        raise invalid_parameter("Param after is not a valid cursor.") from None


def template_page(templates: list[Template], request: Request) -> dict[str, Any]:
    """One page of templates: `{"data": [...], "paging": {"cursors": {before, after}, "next"?}}`."""
    params = request.query_params
    try:
        limit = int(params.get("limit", DEFAULT_TEMPLATE_LIMIT))
    except ValueError:
        raise invalid_parameter("Param limit must be an integer.") from None
    if limit < 1:
        raise invalid_parameter("Param limit must be positive.")
    chosen = [
        t
        for t in templates
        if (params.get("name") is None or params["name"] in t.name)
        and (params.get("status") is None or t.status == params["status"].upper())
        and (params.get("language") is None or t.language == params["language"])
    ]
    start = _from_cursor(params["after"]) if params.get("after") else 0
    page = chosen[start : start + limit]
    result: dict[str, Any] = {"data": [t.as_graph() for t in page]}
    if page:
        paging: dict[str, Any] = {
            "cursors": {"before": _cursor(start), "after": _cursor(start + len(page) - 1)}
        }
        if start + limit < len(chosen):
            after = paging["cursors"]["after"]
            paging["next"] = str(request.url.include_query_params(after=after, limit=limit))
        result["paging"] = paging
    return result
