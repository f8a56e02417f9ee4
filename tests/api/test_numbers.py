"""Connected numbers through the REST API: listing, adding, changing, removing and testing a number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select, update
from starlette.types import ASGIApp, Receive, Scope, Send

from layanify.accounts.models import Role
from layanify.config import Settings
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import WhatsAppNumber
from layanify.simulator import Simulator
from tests import factories
from tests.conftest import Tenant, WebhookPoster
from tests.sending.conftest import (  # noqa: F401
    TOKEN,
    LateASGITransport,
    live_settings,
    running_product,
    sim,
    sim_config,
    simulator,
)

NUMBERS = "/api/v1/numbers"
NEW_PHONE_NUMBER_ID = "109876543210987"
NEW_TOKEN = "EAAGnewTokenForCabangDua9Zq"


def new_number(**overrides: Any) -> dict[str, Any]:
    """What an owner pastes from Meta's API Setup page to connect a second number."""
    body: dict[str, Any] = {
        "phone_number_id": NEW_PHONE_NUMBER_ID,
        "waba_id": factories.FIXTURE_WABA_ID,
        "access_token": NEW_TOKEN,
        "display_name": "Toko Budi Cabang 2",
    }
    body.update(overrides)
    return body


async def stored_numbers(sessionmaker: Sessionmaker) -> int:
    """How many number rows exist (removed ones included)."""
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(WhatsAppNumber))).scalar_one())


async def agent_headers(sessionmaker: Sessionmaker) -> dict[str, str]:
    """Bearer auth of an agent of Toko Budi's workspace."""
    key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password 1",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    return {"Authorization": f"Bearer {key}"}


# --- Listing and isolation ----------------------------------------------------------------------


async def test_list_shows_the_number_with_its_state_and_never_its_token(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get(NUMBERS, headers=tenant.headers)
    assert response.status_code == 200
    [number] = response.json()
    assert number["id"] == tenant.number_id
    assert number["phone_number_id"] == factories.FIXTURE_PHONE_NUMBER_ID
    assert number["waba_id"] == factories.FIXTURE_WABA_ID
    assert number["display_name"] == "Toko Budi"
    assert number["status"] == "approved"
    assert number["connection_state"] == "unknown"
    assert number["rate_limit_per_second"] == 80
    assert number["token_last4"] == TOKEN[-4:]
    assert not any("token" in key and key != "token_last4" for key in number)
    assert TOKEN not in response.text


async def test_another_workspaces_number_is_404_for_every_operation(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    url = f"{NUMBERS}/{other_tenant.number_id}"
    answers = [
        await client.get(url, headers=tenant.headers),
        await client.patch(url, json={"display_name": "mine now"}, headers=tenant.headers),
        await client.delete(url, headers=tenant.headers),
        await client.post(f"{url}/test", headers=tenant.headers),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert {a.json()["error"]["code"] for a in answers} == {"not_found"}
    theirs = (await client.get(url, headers=other_tenant.headers)).json()
    assert theirs["display_name"] == "Other Co"
    assert [n["id"] for n in (await client.get(NUMBERS, headers=tenant.headers)).json()] == [tenant.number_id]


async def test_an_agent_sees_the_numbers_but_cannot_change_them(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    headers = await agent_headers(sessionmaker)
    listed = await client.get(NUMBERS, headers=headers)
    assert listed.status_code == 200
    assert [n["id"] for n in listed.json()] == [tenant.number_id]
    url = f"{NUMBERS}/{tenant.number_id}"
    answers = [
        await client.post(NUMBERS, json=new_number(), headers=headers),
        await client.patch(url, json={"display_name": "Agent was here"}, headers=headers),
        await client.delete(url, headers=headers),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert {a.json()["error"]["code"] for a in answers} == {"forbidden"}
    unchanged = (await client.get(url, headers=tenant.headers)).json()
    assert unchanged["display_name"] == "Toko Budi"
    assert await stored_numbers(sessionmaker) == 1


# --- Adding -------------------------------------------------------------------------------------


async def test_adding_a_number_makes_it_pending_until_tested(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(NUMBERS, json=new_number(rate_limit_per_second=20), headers=tenant.headers)
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["phone_number_id"] == NEW_PHONE_NUMBER_ID
    assert added["status"] == "pending"
    assert added["connection_state"] == "unknown"
    assert added["token_last4"] == "a9Zq"
    assert added["rate_limit_per_second"] == 20
    assert added["user_id"] == tenant.user_id
    assert NEW_TOKEN not in response.text
    listed = (await client.get(NUMBERS, headers=tenant.headers)).json()
    assert [n["phone_number_id"] for n in listed] == [factories.FIXTURE_PHONE_NUMBER_ID, NEW_PHONE_NUMBER_ID]


async def test_a_number_already_connected_is_409_even_in_another_workspace(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant, other_tenant: Tenant
) -> None:
    own = await client.post(
        NUMBERS, json=new_number(phone_number_id=factories.FIXTURE_PHONE_NUMBER_ID), headers=tenant.headers
    )
    theirs = await client.post(
        NUMBERS, json=new_number(phone_number_id=other_tenant.phone_number_id), headers=tenant.headers
    )
    assert own.status_code == theirs.status_code == 409
    assert own.json() == theirs.json()  # the same answer: nothing tells that another workspace has it
    assert own.json()["error"]["code"] == "number_exists"
    assert await stored_numbers(sessionmaker) == 2
    assert (await client.get(f"{NUMBERS}/{other_tenant.number_id}", headers=other_tenant.headers)).json()[
        "display_name"
    ] == "Other Co"


BAD_INPUTS = [
    ({"phone_number_id": "+62 812-3456-7890"}, ["body", "phone_number_id"]),
    ({"phone_number_id": "abc123456"}, ["body", "phone_number_id"]),
    ({"access_token": "EAAG token with spaces"}, ["body", "access_token"]),
    ({"access_token": "short"}, ["body", "access_token"]),
    ({"rate_limit_per_second": 0}, ["body", "rate_limit_per_second"]),
    ({"webhook_url": "https://example.com"}, ["body", "webhook_url"]),
    # A missing field is named by its camelCase alias (the tRPC name), a wrong one by the key sent.
    ({"access_token": None}, ["body", "accessToken"]),
]


async def test_bad_input_is_422_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    for change, loc in BAD_INPUTS:
        body = {k: v for k, v in new_number(**change).items() if v is not None}
        response = await client.post(NUMBERS, json=body, headers=tenant.headers)
        assert response.status_code == 422, change
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["loc"] for d in error["details"]] == [loc], change
    assert await stored_numbers(sessionmaker) == 1


# --- Changing -----------------------------------------------------------------------------------


async def test_changing_the_name_and_rate_limit(client: httpx.AsyncClient, tenant: Tenant) -> None:
    url = f"{NUMBERS}/{tenant.number_id}"
    response = await client.patch(
        url, json={"display_name": "Toko Budi Pusat", "rate_limit_per_second": 25}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Toko Budi Pusat"
    assert response.json()["rate_limit_per_second"] == 25
    shown = (await client.get(url, headers=tenant.headers)).json()
    assert (shown["display_name"], shown["rate_limit_per_second"]) == ("Toko Budi Pusat", 25)
    assert shown["token_last4"] == TOKEN[-4:]
    reset = await client.patch(url, json={"rate_limit_per_second": None}, headers=tenant.headers)
    assert reset.json()["rate_limit_per_second"] == 80  # back to the installation's default


async def test_a_new_token_puts_a_connected_number_back_to_unknown(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    async with unit_of_work(sessionmaker) as session:
        await session.execute(
            update(WhatsAppNumber)
            .where(WhatsAppNumber.id == tenant.number_id)
            .values(connection_state="connected")
        )
    url = f"{NUMBERS}/{tenant.number_id}"
    assert (await client.get(url, headers=tenant.headers)).json()["connection_state"] == "connected"
    response = await client.patch(url, json={"access_token": "EAAGrotatedToken4321"}, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["connection_state"] == "unknown"
    assert response.json()["token_last4"] == "4321"
    assert "EAAGrotatedToken4321" not in response.text


async def test_a_bad_change_is_422_and_changes_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    url = f"{NUMBERS}/{tenant.number_id}"
    response = await client.patch(
        url, json={"display_name": "New name", "access_token": "has a space"}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert (await client.get(url, headers=tenant.headers)).json()["display_name"] == "Toko Budi"


# --- Removing -----------------------------------------------------------------------------------


async def test_removing_a_number_keeps_its_history_and_re_adding_brings_it_back(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver(
        factories.text_message("wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDRkE3", "Halo, stok ada?")
    )
    [conversation] = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    assert conversation["number_id"] == tenant.number_id

    removed = await client.delete(f"{NUMBERS}/{tenant.number_id}", headers=tenant.headers)
    assert removed.status_code == 204
    assert removed.content == b""
    assert (await client.get(NUMBERS, headers=tenant.headers)).json() == []
    assert (await client.get(f"{NUMBERS}/{tenant.number_id}", headers=tenant.headers)).status_code == 404
    assert (await client.delete(f"{NUMBERS}/{tenant.number_id}", headers=tenant.headers)).status_code == 404
    messages = await client.get(
        f"/api/v1/conversations/{conversation['id']}/messages", headers=tenant.headers
    )
    assert messages.status_code == 200
    assert [m["content"]["text"] for m in messages.json()["data"]] == ["Halo, stok ada?"]

    back = await client.post(
        NUMBERS,
        json=new_number(phone_number_id=factories.FIXTURE_PHONE_NUMBER_ID, access_token="EAAGbackAgain7777"),
        headers=tenant.headers,
    )
    assert back.status_code == 201, back.text
    assert back.json()["id"] == tenant.number_id
    assert back.json()["status"] == "pending"
    assert back.json()["token_last4"] == "7777"
    [again] = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    assert again["id"] == conversation["id"]
    assert again["number_id"] == tenant.number_id


async def test_a_removed_number_cannot_be_taken_by_another_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert (await client.delete(f"{NUMBERS}/{tenant.number_id}", headers=tenant.headers)).status_code == 204
    taken = await client.post(
        NUMBERS,
        json=new_number(phone_number_id=factories.FIXTURE_PHONE_NUMBER_ID),
        headers=other_tenant.headers,
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "number_exists"


# --- Testing the connection against the Cloud API simulator --------------------------------------


class MetaGate:
    """In front of the simulator: answers the next Graph calls with Meta's app rate limit (code 4).

    The simulator's own `throttle_next` fault only applies to sends, and a connection test only reads.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.throttle_next = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.throttle_next > 0:
            self.throttle_next -= 1
            body = orjson.dumps(
                {
                    "error": {
                        "message": "(#4) Application request limit reached",
                        "type": "OAuthException",
                        "is_transient": True,
                        "code": 4,
                        "fbtrace_id": "AbCdEfGhIjKlMnOp",
                    }
                }
            )
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@pytest.fixture
def gate(simulator: Simulator) -> MetaGate:  # noqa: F811
    """The way from the product to the simulator."""
    return MetaGate(simulator.app)


@pytest.fixture
async def live(
    live_settings: Settings,  # noqa: F811
    sim: tuple[Simulator, LateASGITransport],  # noqa: F811
    gate: MetaGate,
    tenant: Tenant,
) -> AsyncIterator[httpx.AsyncClient]:
    """The product talking to the simulator (through the gate), as the tenant's owner."""
    through_gate = httpx.ASGITransport(app=gate)
    async with running_product(live_settings, sim, tenant, graph_transport=lambda _: through_gate) as (
        _,
        client,
    ):
        yield client


async def test_a_working_connection_is_approved_and_connected(
    live: httpx.AsyncClient,
    simulator: Simulator,  # noqa: F811
) -> None:
    simulator.add_number(
        NEW_PHONE_NUMBER_ID,
        waba_id=factories.FIXTURE_WABA_ID,
        token=NEW_TOKEN,
        display_phone_number="+62 812-0000-1111",
        verified_name="Toko Budi Cabang",
        quality_rating="YELLOW",
    )
    added = (await live.post(NUMBERS, json=new_number())).json()
    assert added["status"] == "pending"

    response = await live.post(f"{NUMBERS}/{added['id']}/test")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True
    assert report["problem"] is None
    assert report["diagnosis"].startswith("Connected")
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("phone_number", True),
        ("waba", True),
        ("webhook", True),
    ]
    number = report["number"]
    assert number["status"] == "approved"
    assert number["connection_state"] == "connected"
    assert number["verified_name"] == "Toko Budi Cabang"
    assert number["quality_rating"] == "YELLOW"
    assert number["number"] == "6281200001111"
    assert number["connection_checked_at"] is not None
    shown = (await live.get(f"{NUMBERS}/{added['id']}")).json()
    assert (shown["status"], shown["connection_state"]) == ("approved", "connected")


async def test_a_revoked_token_is_diagnosed_and_disconnects_the_number(
    live: httpx.AsyncClient,
    simulator: Simulator,  # noqa: F811
    tenant: Tenant,
) -> None:
    simulator.revoke_token(TOKEN)
    report = (await live.post(f"{NUMBERS}/{tenant.number_id}/test")).json()
    assert report["ok"] is False
    assert report["problem"] == "invalid_token"
    assert "access token" in report["diagnosis"].lower()
    assert report["checks"][-1]["name"] == "phone_number"
    assert report["checks"][-1]["ok"] is False
    assert report["number"]["connection_state"] == "disconnected"
    assert report["number"]["connection_error"] == report["diagnosis"]
    assert TOKEN not in str(report)
    shown = (await live.get(f"{NUMBERS}/{tenant.number_id}")).json()
    assert shown["connection_state"] == "disconnected"


async def test_a_phone_number_id_meta_does_not_know_is_diagnosed(live: httpx.AsyncClient) -> None:
    # The token is valid (it is the tenant's), the id was mistyped.
    added = (
        await live.post(NUMBERS, json=new_number(phone_number_id="106540352242999", access_token=TOKEN))
    ).json()
    report = (await live.post(f"{NUMBERS}/{added['id']}/test")).json()
    assert report["ok"] is False
    assert report["problem"] == "phone_number_not_found"
    assert "Phone Number ID" in report["diagnosis"]
    assert report["number"]["connection_state"] == "error"
    assert report["number"]["status"] == "pending"


async def test_an_unknown_id_with_an_unknown_token_is_an_invalid_token(live: httpx.AsyncClient) -> None:
    added = (await live.post(NUMBERS, json=new_number(phone_number_id="106540352242999"))).json()
    report = (await live.post(f"{NUMBERS}/{added['id']}/test")).json()
    assert report["problem"] == "invalid_token"  # Meta checks the token before it looks the id up
    assert report["number"]["connection_state"] == "disconnected"


async def test_a_wrong_business_account_id_is_diagnosed_without_blaming_the_token(
    live: httpx.AsyncClient,
    simulator: Simulator,  # noqa: F811
    tenant: Tenant,
) -> None:
    simulator.add_number(
        "109999999999000", waba_id="109999999999999", token="EAAGother", display_phone_number="1"
    )
    for waba_id in ("109999999999999", "102290129340399"):  # another business's account, then a typo
        changed = await live.patch(f"{NUMBERS}/{tenant.number_id}", json={"waba_id": waba_id})
        assert changed.json()["connection_state"] == "unknown"
        report = (await live.post(f"{NUMBERS}/{tenant.number_id}/test")).json()
        assert report["ok"] is False
        assert report["problem"] == "wrong_waba", waba_id
        assert "WhatsApp Business Account ID" in report["diagnosis"]
        assert [(c["name"], c["ok"]) for c in report["checks"]] == [("phone_number", True), ("waba", False)]
        assert report["number"]["connection_state"] == "error"  # not `disconnected`: the token works


@pytest.mark.parametrize("unsubscribe", ["world", "graph_api"])
async def test_a_webhook_not_subscribed_is_diagnosed_but_sending_keeps_working(
    live: httpx.AsyncClient,
    simulator: Simulator,  # noqa: F811
    tenant: Tenant,
    unsubscribe: str,
) -> None:
    if unsubscribe == "world":
        simulator.world.subscribed[factories.FIXTURE_WABA_ID] = False
    else:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=simulator.app), base_url="http://sim.test"
        ) as g:
            gone = await g.delete(
                f"/v23.0/{factories.FIXTURE_WABA_ID}/subscribed_apps",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert gone.json() == {"success": True}
    report = (await live.post(f"{NUMBERS}/{tenant.number_id}/test")).json()
    assert report["ok"] is False
    assert report["problem"] == "webhook_not_verified"
    assert "/api/webhooks/whatsapp" in report["diagnosis"]
    assert "verify token" in report["diagnosis"]
    assert report["checks"][-1] == {
        "name": "webhook",
        "ok": False,
        "message": "no app is subscribed to the account's webhooks",
    }
    assert report["number"]["connection_state"] == "connected"


async def test_a_rate_limited_test_says_to_wait_and_changes_nothing_else(
    live: httpx.AsyncClient, gate: MetaGate, tenant: Tenant
) -> None:
    gate.throttle_next = 1
    report = (await live.post(f"{NUMBERS}/{tenant.number_id}/test")).json()
    assert report["ok"] is False
    assert report["problem"] == "rate_limited"
    assert "wait" in report["diagnosis"]
    assert report["number"]["status"] == "approved"
    assert report["number"]["connection_state"] == "unknown"
    again = (await live.post(f"{NUMBERS}/{tenant.number_id}/test")).json()
    assert (again["ok"], again["number"]["connection_state"]) == (True, "connected")


async def test_an_agent_may_test_a_connection(
    live: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    response = await live.post(
        f"{NUMBERS}/{tenant.number_id}/test", headers=await agent_headers(sessionmaker)
    )
    assert response.status_code == 200
    assert response.json()["number"]["connection_state"] == "connected"
