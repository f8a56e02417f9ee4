"""Who may read what: API keys, login sessions, roles, and strict workspace isolation (404, never 403)."""

from __future__ import annotations

import httpx
import pytest

from layanify.accounts.models import Role
from layanify.db.session import Sessionmaker
from tests import factories
from tests.conftest import Tenant, WebhookPoster


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/conversations",
        "/api/v1/contacts",
        "/api/v1/me",
        "/api/v1/messages/1",
        "/api/v1/webhooks/events",
    ],
)
async def test_api_requires_credentials(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "authorization", ["Bearer lay_not-a-real-key", "Bearer ", "Basic dXNlcjpwYXNz", "lay_without_scheme"]
)
async def test_invalid_api_key_is_401(client: httpx.AsyncClient, tenant: Tenant, authorization: str) -> None:
    response = await client.get("/api/v1/conversations", headers={"Authorization": authorization})
    assert response.status_code == 401


async def test_login_sets_a_session_cookie_that_reads_the_api(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": "OWNER@tokobudi.id", "password": tenant.password}
    )
    assert response.status_code == 200
    assert response.json()["workspace_id"] == tenant.workspace_id
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    me = await client.get("/api/v1/me")
    assert me.json()["email"] == tenant.email
    assert me.json()["role"] == "owner"
    token = me.json()["csrf_token"]
    assert token == response.json()["csrf_token"]
    # A change riding on the cookie needs the session's CSRF token.
    assert (await client.post("/api/v1/auth/logout")).status_code == 403
    await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token})
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_wrong_password_is_401_without_saying_which_part_was_wrong(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"email": tenant.email, "password": "nope-nope"}
    )
    no_such_user = await client.post("/api/v1/auth/login", json={"email": "x@y.id", "password": "nope-nope"})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()
    assert "set-cookie" not in wrong_password.headers


async def test_forged_session_cookie_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    client.cookies.set("layanify_session", "eyJ1IjoxLCJ3IjoxfQ.forged.signature")
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


async def test_user_switches_between_their_workspaces_only(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant, other_tenant: Tenant
) -> None:
    await factories.add_member(
        sessionmaker,
        email=tenant.email,
        password=tenant.password,
        workspace="Cabang Surabaya",
        role=Role.AGENT,
    )
    await client.post("/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password})
    me = (await client.get("/api/v1/me")).json()
    assert [w["name"] for w in me["workspaces"]] == ["Toko Budi", "Cabang Surabaya"]
    second = me["workspaces"][1]["id"]
    csrf = {"X-CSRF-Token": me["csrf_token"]}
    switched = await client.post("/api/v1/auth/workspace", json={"workspace_id": second}, headers=csrf)
    assert switched.json()["workspace_id"] == second
    assert switched.json()["role"] == "agent"
    csrf = {"X-CSRF-Token": switched.json()["csrf_token"]}  # a new session, a new token
    refused = await client.post(
        "/api/v1/auth/workspace", json={"workspace_id": other_tenant.workspace_id}, headers=csrf
    )
    assert refused.status_code == 404


async def test_another_workspaces_objects_are_404(
    webhook: WebhookPoster, tenant: Tenant, other_tenant: Tenant
) -> None:
    await webhook.deliver("text")
    client = webhook.client
    [conversation] = (await client.get("/api/v1/conversations", headers=tenant.headers)).json()["data"]
    [message] = (
        await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=tenant.headers)
    ).json()["data"]
    [event] = (await client.get("/api/v1/webhooks/events", headers=tenant.headers)).json()["data"]
    for path in (
        f"/api/v1/conversations/{conversation['id']}",
        f"/api/v1/conversations/{conversation['id']}/messages",
        f"/api/v1/messages/{message['id']}",
        f"/api/v1/webhooks/events/{event['id']}",
    ):
        assert (await client.get(path, headers=tenant.headers)).status_code == 200
        theirs = await client.get(path, headers=other_tenant.headers)
        assert theirs.status_code == 404, path
        assert theirs.json()["error"]["code"] == "not_found"
    replay = await client.post(f"/api/v1/webhooks/events/{event['id']}/replay", headers=other_tenant.headers)
    assert replay.status_code == 404
    for path in ("/api/v1/conversations", "/api/v1/contacts", "/api/v1/webhooks/events"):
        assert (await client.get(path, headers=other_tenant.headers)).json()["data"] == []


async def test_agents_read_conversations_but_not_the_webhook_log(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    agent_key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent-password",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    await webhook.deliver("text")
    headers = {"Authorization": f"Bearer {agent_key}"}
    assert len((await webhook.client.get("/api/v1/conversations", headers=headers)).json()["data"]) == 1
    assert (await webhook.client.get("/api/v1/webhooks/events", headers=headers)).status_code == 403


async def test_pagination_walks_every_conversation_newest_first_once(
    webhook: WebhookPoster, tenant: Tenant
) -> None:
    for i in range(7):
        await webhook.post(
            factories.text_message(
                f"wamid.page-{i}", f"pesan {i}", wa_id=f"6281300000{i:02d}", timestamp=1764000000 + i
            )
        )
    await webhook.process()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (
            await webhook.client.get("/api/v1/conversations", params=params, headers=tenant.headers)
        ).json()
        seen += [c["last_message_preview"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"pesan {i}" for i in reversed(range(7))]


async def test_garbage_cursor_and_limits_are_clear_errors(client: httpx.AsyncClient, tenant: Tenant) -> None:
    bad_cursor = await client.get("/api/v1/conversations", params={"cursor": "%%%"}, headers=tenant.headers)
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"
    too_many = await client.get("/api/v1/conversations", params={"limit": "100000"}, headers=tenant.headers)
    assert too_many.status_code == 422
    assert too_many.json()["error"]["details"][0]["loc"] == ["query", "limit"]
    not_an_id = await client.get("/api/v1/messages/abc", headers=tenant.headers)
    assert not_an_id.status_code == 422


async def test_openapi_documents_the_api(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert {
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/contacts",
    } <= set(schema["paths"])
    assert (await client.get("/docs")).status_code == 200


async def test_an_event_carrying_two_workspaces_data_does_not_show_either_the_others_payload(
    webhook: WebhookPoster, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = factories.text_message("wamid.ours", "pesan untuk Toko Budi")
    theirs = factories.text_message("wamid.theirs", "secret for Other Co", phone_number_id="222222222222222")
    body = {"object": "whatsapp_business_account", "entry": ours["entry"] + theirs["entry"]}
    await webhook.deliver(body)
    for owner in (tenant, other_tenant):
        events = (await webhook.client.get("/api/v1/webhooks/events", headers=owner.headers)).json()["data"]
        for event in events:
            detail = await webhook.client.get(f"/api/v1/webhooks/events/{event['id']}", headers=owner.headers)
            assert detail.json()["payload"] is None
            assert detail.json()["payload_withheld"] is True
            assert "secret for Other Co" not in detail.text
    # Each workspace still received its own message.
    for owner, text in ((tenant, "pesan untuk Toko Budi"), (other_tenant, "secret for Other Co")):
        [conversation] = (await webhook.client.get("/api/v1/conversations", headers=owner.headers)).json()[
            "data"
        ]
        assert conversation["last_message_preview"] == text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/messages/99999999999999999999",
        "/api/v1/conversations/99999999999999999999",
        "/api/v1/conversations/99999999999999999999/messages",
        "/api/v1/webhooks/events/99999999999999999999",
        "/api/v1/messages/0",
    ],
)
async def test_ids_no_row_can_have_are_a_clear_422(
    client: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_cursor_or_workspace_id_beyond_64_bits_is_refused_clearly(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    from layanify.pagination import encode_cursor

    page = await client.get(
        "/api/v1/contacts", params={"cursor": encode_cursor(10**30)}, headers=tenant.headers
    )
    assert page.status_code == 400
    assert page.json()["error"]["code"] == "invalid_cursor"
    switch = await client.post(
        "/api/v1/auth/workspace", json={"workspace_id": 10**30}, headers=tenant.headers
    )
    assert switch.status_code == 422
