"""A number's behaviour settings through the REST API and the seed's tRPC updateNumber."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from layanify.accounts.models import Role
from layanify.db.session import Sessionmaker
from tests import factories
from tests.conftest import Tenant


def url(tenant: Tenant) -> str:
    return f"/api/v1/numbers/{tenant.number_id}/settings"


def full_settings() -> dict[str, Any]:
    """What an owner fills in on the settings page of a shop in Jakarta."""
    return {
        "business_hours": {
            "enabled": True,
            "timezone": "Asia/Jakarta",
            "weekly": {
                "mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
                "tue": [{"start": "08:00", "end": "17:00"}],
                "sat": [{"start": "22:00", "end": "02:00"}],
            },
            "holidays": [{"date": "2026-12-25", "name": "Natal"}],
        },
        "auto_reply": {
            "enabled": True,
            "greeting": {
                "enabled": True,
                "reply": {"type": "text", "text": "Halo! Terima kasih sudah menghubungi."},
            },
            "away": {
                "enabled": True,
                "reply": {"type": "template", "name": "hello_world", "language": "en_US"},
            },
            "keywords": [
                {
                    "id": "harga",
                    "match": "contains",
                    "keywords": ["harga", "price"],
                    "reply": {"type": "text", "text": "Daftar harga: ..."},
                },
                {
                    "id": "resi",
                    "match": "regex",
                    "keywords": [r"\bresi\s*\d+"],
                    "reply": {"type": "text", "text": "Cek resi di ..."},
                    "priority": 5,
                },
            ],
            "cooldown_minutes": 60,
        },
        "read_receipts": "on_arrival",
        "typing_indicator": True,
        "reply_delay_seconds": 5,
    }


async def test_a_new_number_has_defaults_that_do_nothing_on_their_own(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get(url(tenant), headers=tenant.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["auto_reply"]["enabled"] is False
    assert body["business_hours"]["enabled"] is False
    assert body["business_hours"]["timezone"] == "Asia/Jakarta"
    assert body["read_receipts"] == "on_open"
    assert body["typing_indicator"] is False
    assert body["reply_delay_seconds"] == 0


async def test_saved_settings_are_read_back(client: httpx.AsyncClient, tenant: Tenant) -> None:
    saved = await client.put(url(tenant), json=full_settings(), headers=tenant.headers)
    assert saved.status_code == 200, saved.text
    body = (await client.get(url(tenant), headers=tenant.headers)).json()
    assert body == saved.json()
    assert body["business_hours"]["weekly"]["sat"] == [{"start": "22:00", "end": "02:00"}]
    assert body["business_hours"]["weekly"]["sun"] == []
    assert [r["id"] for r in body["auto_reply"]["keywords"]] == ["harga", "resi"]
    assert body["auto_reply"]["greeting"]["reply"] == {
        "type": "text",
        "text": "Halo! Terima kasih sudah menghubungi.",
        "preview_url": False,
    }
    assert body["reply_delay_seconds"] == 5


async def test_a_partial_update_changes_only_what_it_names(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.put(url(tenant), json=full_settings(), headers=tenant.headers)
    response = await client.patch(
        url(tenant),
        json={
            "reply_delay_seconds": 30,
            "business_hours": {"weekly": {"sun": [{"start": "10:00", "end": "14:00"}]}},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reply_delay_seconds"] == 30
    assert body["business_hours"]["weekly"]["sun"] == [{"start": "10:00", "end": "14:00"}]
    assert body["business_hours"]["weekly"]["mon"][1] == {"start": "13:00", "end": "17:00"}
    assert body["auto_reply"]["keywords"][0]["id"] == "harga"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"business_hours": {"timezone": "Asia/Jakart"}}, "business_hours.timezone", "unknown timezone"),
        (
            {
                "business_hours": {
                    "weekly": {
                        "mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "15:00"}]
                    }
                }
            },
            "business_hours.weekly",
            "overlap",
        ),
        (
            {
                "business_hours": {
                    "weekly": {
                        "fri": [{"start": "22:00", "end": "02:00"}],
                        "sat": [{"start": "01:00", "end": "05:00"}],
                    }
                }
            },
            "business_hours.weekly",
            "overlap",
        ),
        (
            {"business_hours": {"weekly": {"mon": [{"start": "8 pagi", "end": "17:00"}]}}},
            "business_hours.weekly",
            "HH:MM",
        ),
        (
            {
                "auto_reply": {
                    "keywords": [
                        {"match": "regex", "keywords": ["harga("], "reply": {"type": "text", "text": "x"}}
                    ]
                }
            },
            "auto_reply.keywords",
            "not a valid regular expression",
        ),
        ({"reply_delay_seconds": 301}, "reply_delay_seconds", "less than or equal to 300"),
        ({"reply_delay_seconds": -1}, "reply_delay_seconds", "greater than or equal to 0"),
        ({"read_receipts": "always"}, "read_receipts", "never"),
        ({"read_receipts": "never", "typing_indicator": True}, "settings", "typing indicator"),
        (
            {"auto_reply": {"greeting": {"enabled": True, "reply": None}}},
            "auto_reply.greeting",
            "give the reply",
        ),
        (
            {"auto_reply": {"keywords": [{"keywords": [], "reply": {"type": "text", "text": "x"}}]}},
            "auto_reply.keywords",
            "at least 1",
        ),
        (
            {"auto_reply": {"greeting": {"enabled": True, "reply": {"type": "text", "text": ""}}}},
            "auto_reply.greeting",
            "text",
        ),
        (
            {"auto_reply": {"cooldown_minutes": 0}},
            "auto_reply.cooldown_minutes",
            "greater than or equal to 1",
        ),
        ({"auto_reply": {"enabled": True, "colldown": 5}}, "auto_reply.colldown", "Extra inputs"),
    ],
)
async def test_invalid_settings_get_a_clear_error_and_change_nothing(
    client: httpx.AsyncClient, tenant: Tenant, change: dict[str, Any], field: str, words: str
) -> None:
    await client.put(url(tenant), json=full_settings(), headers=tenant.headers)
    before = (await client.get(url(tenant), headers=tenant.headers)).json()
    response = await client.patch(url(tenant), json=change, headers=tenant.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]
    assert words.lower() in response.text.lower()
    assert error["details"], "every problem is listed with its location"
    assert (await client.get(url(tenant), headers=tenant.headers)).json() == before


async def test_only_owners_change_settings_and_other_workspaces_see_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    agent_key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password 1",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    agent = {"Authorization": f"Bearer {agent_key}"}
    assert (await client.get(url(tenant), headers=agent)).status_code == 200
    assert (await client.put(url(tenant), json=full_settings(), headers=agent)).status_code == 403
    assert (await client.get(url(tenant), headers=other_tenant.headers)).status_code == 404
    assert (
        await client.put(url(tenant), json=full_settings(), headers=other_tenant.headers)
    ).status_code == 404
    assert (await client.get(url(tenant), headers=tenant.headers)).json()["auto_reply"]["enabled"] is False


async def test_the_seeds_update_number_saves_settings_in_camel_case(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.put(
        "/api/trpc/whatsapp.updateNumber",
        json={
            "id": tenant.number_id,
            "displayName": "Toko Budi Pusat",
            "settings": {
                "readReceipts": "never",
                "replyDelaySeconds": 10,
                "autoReply": {
                    "enabled": True,
                    "greeting": {"enabled": True, "reply": {"type": "text", "text": "Halo!"}},
                },
                "businessHours": {"enabled": True, "timezone": "Asia/Makassar"},
            },
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["result"]["data"]
    assert data["displayName"] == "Toko Budi Pusat"
    assert data["settings"]["readReceipts"] == "never"
    assert data["settings"]["replyDelaySeconds"] == 10
    assert data["settings"]["autoReply"]["greeting"]["reply"]["text"] == "Halo!"
    assert data["settings"]["businessHours"]["timezone"] == "Asia/Makassar"
    listed = (await client.get("/api/trpc/whatsapp.getNumbers", headers=tenant.headers)).json()["result"][
        "data"
    ]
    assert listed[0]["settings"] == data["settings"]
    # What the seed's client reads back can be sent back unchanged.
    again = await client.put(
        "/api/trpc/whatsapp.updateNumber",
        json={"id": tenant.number_id, "settings": data["settings"]},
        headers=tenant.headers,
    )
    assert again.status_code == 200, again.text
    assert again.json()["result"]["data"]["settings"] == data["settings"]
    rest = (await client.get(url(tenant), headers=tenant.headers)).json()
    assert rest["read_receipts"] == "never"


async def test_the_seeds_update_number_refuses_bad_settings_and_keeps_the_number(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.put(
        "/api/trpc/whatsapp.updateNumber",
        json={
            "id": tenant.number_id,
            "displayName": "Renamed",
            "settings": {"businessHours": {"timezone": "Mars/Base"}},
        },
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert "unknown timezone" in response.json()["error"]["message"]
    number = (await client.get(f"/api/v1/numbers/{tenant.number_id}", headers=tenant.headers)).json()
    assert number["display_name"] == "Toko Budi"
