"""The seed's tRPC endpoints (`/api/trpc/whatsapp.*`), called the way tRPC clients call them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from layanify.accounts.models import Role
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import WhatsAppNumber
from layanify.simulator import Simulator
from tests import factories
from tests.conftest import Tenant
from tests.sending.conftest import TOKEN, live, live_settings, sim, sim_config, simulator  # noqa: F401

TRPC = "/api/trpc"
NEW_NUMBER = {
    "phoneNumberId": "109876543210987",
    "accessToken": "EAAGtrpcAddedToken5150",
    "businessAccountId": factories.FIXTURE_WABA_ID,
    "displayName": "Toko Budi Cabang 2",
}


def query(value: Any) -> str:
    """`?input=` as tRPC's httpLink encodes it."""
    return "?input=" + quote(json.dumps(value))


async def stored_numbers(sessionmaker: Sessionmaker) -> int:
    """How many number rows exist (removed ones included)."""
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(WhatsAppNumber))).scalar_one())


def trpc_error(response: httpx.Response, status: int, code: str, number: int, path: str) -> dict[str, Any]:
    """Assert tRPC's error envelope with this status and name; return the error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == number
    assert error["data"]["code"] == code
    assert error["data"]["httpStatus"] == status
    assert error["data"]["path"] == path
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


# --- Answers ------------------------------------------------------------------------------------


async def test_get_numbers_answers_in_the_envelope_with_camel_case_keys(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get(f"{TRPC}/whatsapp.getNumbers", headers=tenant.headers)
    assert response.status_code == 200
    [number] = response.json()["result"]["data"]
    assert number["id"] == tenant.number_id
    assert number["phoneNumberId"] == factories.FIXTURE_PHONE_NUMBER_ID
    assert number["wabaId"] == factories.FIXTURE_WABA_ID
    assert number["displayName"] == "Toko Budi"
    assert number["status"] == "approved"
    assert number["connectionState"] == "unknown"
    assert number["tokenLast4"] == TOKEN[-4:]
    assert number["rateLimitPerSecond"] == 80
    assert number["userId"] == tenant.user_id
    assert not [key for key in number if "_" in key]
    assert TOKEN not in response.text


async def test_get_numbers_accepts_what_trpc_clients_send_as_no_input(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    no_input = '{"json":null,"meta":{"values":["undefined"]}}'
    for suffix in ["", query(None), query({"json": None}), "?input=" + quote(no_input)]:
        response = await client.get(f"{TRPC}/whatsapp.getNumbers{suffix}", headers=tenant.headers)
        assert response.status_code == 200, suffix
        assert [n["id"] for n in response.json()["result"]["data"]] == [tenant.number_id]


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "superjson"])
async def test_add_number_with_camel_case_input(
    client: httpx.AsyncClient, tenant: Tenant, wrap: bool
) -> None:
    body = {"json": NEW_NUMBER} if wrap else NEW_NUMBER
    response = await client.post(f"{TRPC}/whatsapp.addNumber", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    added = response.json()["result"]["data"]
    assert added["phoneNumberId"] == "109876543210987"
    assert added["wabaId"] == factories.FIXTURE_WABA_ID
    assert added["displayName"] == "Toko Budi Cabang 2"
    assert added["status"] == "pending"
    assert added["tokenLast4"] == "5150"
    assert "EAAGtrpcAddedToken5150" not in response.text
    listed = (await client.get(f"{TRPC}/whatsapp.getNumbers", headers=tenant.headers)).json()["result"][
        "data"
    ]
    assert [n["phoneNumberId"] for n in listed] == [factories.FIXTURE_PHONE_NUMBER_ID, "109876543210987"]


async def test_add_number_accepts_waba_id_as_the_business_account(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {**NEW_NUMBER, "wabaId": "102290129340400"}
    del body["businessAccountId"]
    response = await client.post(f"{TRPC}/whatsapp.addNumber", json=body, headers=tenant.headers)
    assert response.json()["result"]["data"]["wabaId"] == "102290129340400"


async def test_update_number_changes_what_was_given(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for method, name in (("PUT", "Toko Budi Pusat"), ("POST", "Toko Budi Utama")):
        body = {"json": {"id": tenant.number_id, "displayName": name, "rateLimitPerSecond": 30}}
        url = f"{TRPC}/whatsapp.updateNumber"
        response = await client.request(method, url, json=body, headers=tenant.headers)
        assert response.status_code == 200, response.text
        number = response.json()["result"]["data"]
        assert (number["displayName"], number["rateLimitPerSecond"]) == (name, 30)
        assert number["wabaId"] == factories.FIXTURE_WABA_ID
        rest = (await client.get(f"/api/v1/numbers/{tenant.number_id}", headers=tenant.headers)).json()
        assert rest["display_name"] == name


async def test_update_number_with_a_new_token_waits_for_a_test(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.put(
        f"{TRPC}/whatsapp.updateNumber",
        json={"id": tenant.number_id, "accessToken": "EAAGfreshToken2468"},
        headers=tenant.headers,
    )
    number = response.json()["result"]["data"]
    assert (number["connectionState"], number["tokenLast4"]) == ("unknown", "2468")


@pytest.mark.parametrize("how", ["body", "query", "post"])
async def test_delete_number(client: httpx.AsyncClient, tenant: Tenant, how: str) -> None:
    url = f"{TRPC}/whatsapp.deleteNumber"
    target = {"id": tenant.number_id}
    if how == "body":
        response = await client.request("DELETE", url, json=target, headers=tenant.headers)
    elif how == "query":
        response = await client.delete(url + query({"json": target}), headers=tenant.headers)
    else:
        response = await client.post(url, json={"json": target}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": {"data": {"success": True, "id": tenant.number_id}}}
    listed = await client.get(f"{TRPC}/whatsapp.getNumbers", headers=tenant.headers)
    assert listed.json() == {"result": {"data": []}}


# --- Errors -------------------------------------------------------------------------------------


async def test_without_credentials_is_401_unauthorized(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    for method, procedure in [
        ("GET", "whatsapp.getNumbers"),
        ("POST", "whatsapp.addNumber"),
        ("POST", "whatsapp.testConnection"),
    ]:
        body = NEW_NUMBER if method == "POST" else None
        response = await client.request(method, f"{TRPC}/{procedure}", json=body)
        trpc_error(response, 401, "UNAUTHORIZED", -32001, procedure)
    assert await stored_numbers(sessionmaker) == 1


async def test_invalid_input_is_400_with_issues_and_nothing_is_stored(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    for change, field in [
        ({"phoneNumberId": "+62 812 3456"}, "phoneNumberId"),
        ({"accessToken": "EAAG token with spaces"}, "accessToken"),
        ({"webhookUrl": "https://example.com"}, "webhookUrl"),
    ]:
        response = await client.post(
            f"{TRPC}/whatsapp.addNumber", json={"json": {**NEW_NUMBER, **change}}, headers=tenant.headers
        )
        error = trpc_error(response, 400, "BAD_REQUEST", -32600, "whatsapp.addNumber")
        assert [issue["path"] for issue in error["data"]["issues"]] == [[field]]
        assert "EAAG token with spaces" not in response.text
    assert await stored_numbers(sessionmaker) == 1


async def test_missing_input_is_400_naming_every_required_field(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(f"{TRPC}/whatsapp.addNumber", headers=tenant.headers)
    error = trpc_error(response, 400, "BAD_REQUEST", -32600, "whatsapp.addNumber")
    assert sorted(issue["path"][0] for issue in error["data"]["issues"]) == ["accessToken", "phoneNumberId"]


async def test_input_that_is_not_json_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        f"{TRPC}/whatsapp.addNumber", content=b"{phoneNumberId:", headers=tenant.headers
    )
    trpc_error(response, 400, "BAD_REQUEST", -32600, "whatsapp.addNumber")


async def test_an_unknown_id_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for method, procedure, body in [
        ("PUT", "whatsapp.updateNumber", {"id": 999999, "displayName": "x"}),
        ("DELETE", "whatsapp.deleteNumber", {"id": 999999}),
        ("POST", "whatsapp.testConnection", {"id": 999999}),
    ]:
        response = await client.request(method, f"{TRPC}/{procedure}", json=body, headers=tenant.headers)
        trpc_error(response, 404, "NOT_FOUND", -32004, procedure)


async def test_another_workspaces_number_is_404_and_untouched(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    update = await client.put(
        f"{TRPC}/whatsapp.updateNumber",
        json={"id": other_tenant.number_id, "displayName": "mine"},
        headers=tenant.headers,
    )
    delete = await client.request(
        "DELETE", f"{TRPC}/whatsapp.deleteNumber", json={"id": other_tenant.number_id}, headers=tenant.headers
    )
    trpc_error(update, 404, "NOT_FOUND", -32004, "whatsapp.updateNumber")
    trpc_error(delete, 404, "NOT_FOUND", -32004, "whatsapp.deleteNumber")
    theirs = await client.get(f"{TRPC}/whatsapp.getNumbers", headers=other_tenant.headers)
    assert [n["displayName"] for n in theirs.json()["result"]["data"]] == ["Other Co"]


async def test_a_duplicate_is_409_conflict(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant, other_tenant: Tenant
) -> None:
    own = await client.post(
        f"{TRPC}/whatsapp.addNumber",
        json={**NEW_NUMBER, "phoneNumberId": factories.FIXTURE_PHONE_NUMBER_ID},
        headers=tenant.headers,
    )
    theirs = await client.post(
        f"{TRPC}/whatsapp.addNumber",
        json={**NEW_NUMBER, "phoneNumberId": other_tenant.phone_number_id},
        headers=tenant.headers,
    )
    error = trpc_error(own, 409, "CONFLICT", -32009, "whatsapp.addNumber")
    assert error["data"]["reason"] == "number_exists"
    assert own.json() == theirs.json()
    assert await stored_numbers(sessionmaker) == 2


async def test_an_agent_cannot_add_update_or_delete(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password 1",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    headers = {"Authorization": f"Bearer {key}"}
    calls = [
        ("POST", "whatsapp.addNumber", NEW_NUMBER),
        ("PUT", "whatsapp.updateNumber", {"id": tenant.number_id, "displayName": "agent"}),
        ("DELETE", "whatsapp.deleteNumber", {"id": tenant.number_id}),
    ]
    for method, procedure, body in calls:
        response = await client.request(method, f"{TRPC}/{procedure}", json=body, headers=headers)
        trpc_error(response, 403, "FORBIDDEN", -32003, procedure)
    listed = await client.get(f"{TRPC}/whatsapp.getNumbers", headers=headers)
    assert [n["displayName"] for n in listed.json()["result"]["data"]] == ["Toko Budi"]
    assert await stored_numbers(sessionmaker) == 1


async def test_an_unknown_procedure_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(f"{TRPC}/whatsapp.getNumberz", headers=tenant.headers)
    error = trpc_error(response, 404, "NOT_FOUND", -32004, "whatsapp.getNumberz")
    assert "whatsapp.getNumberz" in error["message"]


async def test_a_wrong_method_is_405_and_does_nothing(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    for method, procedure in [
        ("GET", "whatsapp.addNumber"),
        ("POST", "whatsapp.getNumbers"),
        ("GET", "whatsapp.deleteNumber"),
        ("GET", "whatsapp.updateNumber"),
    ]:
        url = f"{TRPC}/{procedure}" + query({"id": tenant.number_id, **NEW_NUMBER})
        response = await client.request(method, url, headers=tenant.headers)
        trpc_error(response, 405, "METHOD_NOT_SUPPORTED", -32005, procedure)
    listed = (await client.get(f"{TRPC}/whatsapp.getNumbers", headers=tenant.headers)).json()["result"][
        "data"
    ]
    assert [(n["id"], n["displayName"]) for n in listed] == [(tenant.number_id, "Toko Budi")]
    assert await stored_numbers(sessionmaker) == 1


# --- testConnection against the simulator --------------------------------------------------------


async def test_test_connection_without_input_tests_the_only_number(
    live: httpx.AsyncClient,  # noqa: F811
    tenant: Tenant,
) -> None:
    response = await live.post(f"{TRPC}/whatsapp.testConnection")
    assert response.status_code == 200, response.text
    report = response.json()["result"]["data"]
    assert report["ok"] is True
    assert report["problem"] is None
    number = report["number"]
    assert number["id"] == tenant.number_id
    assert number["connectionState"] == "connected"
    assert number["verifiedName"] == "Toko Budi"
    assert number["qualityRating"] == "GREEN"
    assert number["connectionCheckedAt"] is not None


async def test_test_connection_by_id_explains_a_revoked_token(
    live: httpx.AsyncClient,  # noqa: F811
    simulator: Simulator,  # noqa: F811
    tenant: Tenant,
) -> None:
    simulator.revoke_token(TOKEN)
    response = await live.post(f"{TRPC}/whatsapp.testConnection", json={"json": {"id": tenant.number_id}})
    report = response.json()["result"]["data"]
    assert (report["ok"], report["problem"]) == (False, "invalid_token")
    assert "access token" in report["diagnosis"].lower()
    assert report["number"]["connectionState"] == "disconnected"


async def test_test_connection_without_input_needs_an_id_when_there_are_two_numbers(
    live: httpx.AsyncClient,  # noqa: F811
) -> None:
    added = await live.post(f"{TRPC}/whatsapp.addNumber", json=NEW_NUMBER)
    assert added.status_code == 200
    response = await live.post(f"{TRPC}/whatsapp.testConnection")
    error = trpc_error(response, 422, "UNPROCESSABLE_CONTENT", -32022, "whatsapp.testConnection")
    assert "2 numbers" in error["message"]
