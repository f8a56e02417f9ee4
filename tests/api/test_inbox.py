"""The inbox through HTTP: filters, search, paging while messages arrive, assignment, closing, and the
contact's name, notes and tags — each scoped to the caller's workspace."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from layanify.accounts.models import Role
from layanify.db.session import Sessionmaker
from tests import factories
from tests.conftest import Tenant, WebhookPoster

BUDI = "6281234567890"
SITI = "6289876543210"
ANDI = "6285511112222"
START = int(time.time()) - 3600


def inbound(*messages: tuple[str, str, str, int, str], caption: bool = False) -> dict[str, Any]:
    """One webhook carrying customers' messages: (wamid, wa_id, name, unix time, text or caption)."""
    payload = factories.text_message(*messages[0][:1], messages[0][4], wa_id=messages[0][1])
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"], value["messages"] = [], []
    for wamid, wa_id, name, at, text in messages:
        value["contacts"].append({"profile": {"name": name}, "wa_id": wa_id})
        message: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(at)}
        if caption:
            message |= {"type": "image", "image": {"id": f"media-{wamid}", "caption": text}}
        else:
            message |= {"type": "text", "text": {"body": text}}
        value["messages"].append(message)
    return payload


async def listing(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every conversation of one listing, following next_cursor to the end."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/conversations", params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        found += response.json()["data"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


async def names(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[str]:
    """The contacts' names of a listing, in its order."""
    return [c["contact"]["name"] for c in await listing(client, tenant, **params)]


@pytest.fixture
async def three(tenant: Tenant, webhook: WebhookPoster) -> None:
    """Budi wrote last, then Siti, then Andi first (to the tenant's number, which must exist first)."""
    await webhook.deliver(
        inbound(
            ("wamid.a1", ANDI, "Andi", START, "Kirim ke Bandung ya"),
            ("wamid.s1", SITI, "Siti Rahma", START + 10, "Apakah ada ukuran XL?"),
            ("wamid.b1", BUDI, "Budi Santoso", START + 20, "Pesanan saya sudah dikirim?"),
        )
    )


async def agent(sessionmaker: Sessionmaker, client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    """An agent of Toko Budi: their user id and bearer headers."""
    key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password 1",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    headers = {"Authorization": f"Bearer {key}"}
    me = await client.get("/api/v1/me", headers=headers)
    return me.json()["user_id"], headers


async def conversation_of(client: httpx.AsyncClient, tenant: Tenant, name: str) -> dict[str, Any]:
    """The tenant's conversation with the contact of this name."""
    [found] = [c for c in await listing(client, tenant) if c["contact"]["name"] == name]
    return found


async def patch(
    client: httpx.AsyncClient, tenant: Tenant, conversation_id: int, **body: Any
) -> httpx.Response:
    """PATCH a conversation as the tenant's owner."""
    return await client.patch(f"/api/v1/conversations/{conversation_id}", json=body, headers=tenant.headers)


@pytest.mark.usefixtures("three")
async def test_filters_show_all_mine_unassigned_open_and_closed(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    agent_id, agent_headers = await agent(sessionmaker, client)
    budi, siti, andi = [
        await conversation_of(client, tenant, n) for n in ("Budi Santoso", "Siti Rahma", "Andi")
    ]
    assert (await patch(client, tenant, budi["id"], assigned_user_id=tenant.user_id)).status_code == 200
    assert (await patch(client, tenant, siti["id"], assigned_user_id=agent_id)).status_code == 200
    assert (await patch(client, tenant, andi["id"], status="closed")).status_code == 200

    assert await names(client, tenant) == ["Budi Santoso", "Siti Rahma", "Andi"]
    assert await names(client, tenant, filter="mine") == ["Budi Santoso"]
    assert await names(client, tenant, filter="unassigned") == ["Andi"]
    assert await names(client, tenant, filter="open") == ["Budi Santoso", "Siti Rahma"]
    assert await names(client, tenant, filter="closed") == ["Andi"]
    mine = await client.get("/api/v1/conversations", params={"filter": "mine"}, headers=agent_headers)
    assert [c["assigned_user_name"] for c in mine.json()["data"]] == ["agent"]


async def test_an_unknown_filter_is_422_naming_the_choices(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(
        "/api/v1/conversations", params={"filter": "archived"}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "unknown filter 'archived': use one of all, mine, unassigned, open, closed"
    )


@pytest.mark.usefixtures("three")
async def test_search_finds_names_numbers_however_typed_and_message_text_once_each(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    await webhook.deliver(
        inbound(("wamid.b2", BUDI, "Budi Santoso", START + 30, "Ukuran xl habis?")),
        inbound(("wamid.a2", ANDI, "Andi", START + 40, "Foto kaos MERAH"), caption=True),
    )
    assert await names(client, tenant, q="siti") == ["Siti Rahma"]
    assert await names(client, tenant, q="RAHMA") == ["Siti Rahma"]
    for typed in ("+62 812-3456", "0812 3456", "6281234567890", "(0812) 345.678"):
        assert await names(client, tenant, q=typed) == ["Budi Santoso"], typed
    assert await names(client, tenant, q="ukuran XL") == ["Budi Santoso", "Siti Rahma"]
    assert await names(client, tenant, q="bandung") == ["Andi"]
    assert await names(client, tenant, q="kaos merah") == ["Andi"]  # an image's caption
    assert await names(client, tenant, q="%") == []  # typed characters are literal, not wildcards
    assert await names(client, tenant, q="tidak ada") == []
    assert await names(client, tenant, q="ukuran", filter="closed") == []


async def test_paging_never_repeats_or_skips_while_new_messages_arrive(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    # 30 customers; pairs share a second (Meta's timestamps are whole seconds), so ties need the id.
    customers = [
        (f"wamid.p{i}", f"62811000{i:04d}", f"Pelanggan {i:02d}", START + i // 2, "Halo") for i in range(30)
    ]
    await webhook.deliver(inbound(*customers))
    first = await client.get("/api/v1/conversations", params={"limit": 7}, headers=tenant.headers)
    seen = [c["contact"]["name"] for c in first.json()["data"]]
    cursor = first.json()["next_cursor"]
    # Meanwhile: a customer already seen, one not seen yet, and a new one write again.
    await webhook.deliver(
        inbound(
            ("wamid.n1", customers[29][1], "Pelanggan 29", START + 100, "Lagi"),
            ("wamid.n2", customers[3][1], "Pelanggan 03", START + 101, "Lagi"),
            ("wamid.n3", "6281100009999", "Baru", START + 102, "Halo"),
        )
    )
    while cursor:
        page = await client.get(
            "/api/v1/conversations", params={"limit": 7, "cursor": cursor}, headers=tenant.headers
        )
        seen += [c["contact"]["name"] for c in page.json()["data"]]
        cursor = page.json()["next_cursor"]
    assert len(seen) == len(set(seen))  # nothing twice
    untouched = {f"Pelanggan {i:02d}" for i in range(30)} - {"Pelanggan 03"}
    assert untouched <= set(seen)  # nothing that kept its place skipped
    assert "Baru" not in seen  # it arrived above the pages already read: the next refresh shows it
    assert (await names(client, tenant, limit=3))[:3] == ["Baru", "Pelanggan 03", "Pelanggan 29"]


@pytest.mark.usefixtures("three")
async def test_assign_and_unassign_only_to_members_of_the_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, sessionmaker: Sessionmaker
) -> None:
    agent_id, _ = await agent(sessionmaker, client)
    budi = await conversation_of(client, tenant, "Budi Santoso")
    assigned = await patch(client, tenant, budi["id"], assigned_user_id=agent_id)
    assert assigned.status_code == 200
    assert (assigned.json()["assigned_user_id"], assigned.json()["assigned_user_name"]) == (
        agent_id,
        "agent",
    )
    # Another workspace's user and a user that does not exist get the same answer: nothing is revealed.
    for stranger in (other_tenant.user_id, 987654):
        refused = await patch(client, tenant, budi["id"], assigned_user_id=stranger)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "not_a_member"
        assert refused.json()["error"]["message"] == f"user {stranger} is not a member of this workspace"
    assert (await conversation_of(client, tenant, "Budi Santoso"))["assigned_user_id"] == agent_id
    unassigned = await patch(client, tenant, budi["id"], assigned_user_id=None)
    assert unassigned.json()["assigned_user_id"] is None
    assert unassigned.json()["assigned_user_name"] is None
    # The other workspace cannot see or change it, even naming its own member.
    for body in (
        {"assigned_user_id": other_tenant.user_id},
        {"status": "closed"},
        {"auto_reply_enabled": False},
    ):
        path = f"/api/v1/conversations/{budi['id']}"
        assert (await client.patch(path, json=body, headers=other_tenant.headers)).status_code == 404
    assert (
        await client.get(f"/api/v1/conversations/{budi['id']}", headers=other_tenant.headers)
    ).status_code == 404
    assert await listing(client, other_tenant) == []
    assert await listing(client, other_tenant, q="budi") == []


@pytest.mark.usefixtures("three")
async def test_close_reopen_and_a_customer_message_reopens(
    client: httpx.AsyncClient, tenant: Tenant, webhook: WebhookPoster
) -> None:
    budi = await conversation_of(client, tenant, "Budi Santoso")
    closed = await patch(client, tenant, budi["id"], status="closed")
    assert (closed.json()["status"], closed.json()["closed_at"] is not None) == ("closed", True)
    again = await patch(client, tenant, budi["id"], status="closed")
    assert again.json()["closed_at"] == closed.json()["closed_at"]  # closing twice keeps the first time
    reopened = await patch(client, tenant, budi["id"], status="open")
    assert (reopened.json()["status"], reopened.json()["closed_at"]) == ("open", None)

    await patch(client, tenant, budi["id"], status="closed", assigned_user_id=tenant.user_id)
    await webhook.deliver(inbound(("wamid.b9", BUDI, "Budi Santoso", START + 60, "Halo lagi")))
    now = await conversation_of(client, tenant, "Budi Santoso")
    assert (now["status"], now["closed_at"], now["assigned_user_id"]) == ("open", None, tenant.user_id)
    assert await names(client, tenant, filter="closed") == []


@pytest.mark.usefixtures("three")
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "archived"},
        {"status": None},
        {"auto_reply_enabled": None},
        {"pinned": True},
        {"assigned_user_id": 0},
    ],
)
async def test_a_bad_conversation_change_is_422(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    budi = await conversation_of(client, tenant, "Budi Santoso")
    response = await patch(client, tenant, budi["id"], **body)
    assert response.status_code == 422, response.text
    assert (await conversation_of(client, tenant, "Budi Santoso"))["status"] == "open"


@pytest.mark.usefixtures("three")
async def test_contact_display_name_notes_and_tags(client: httpx.AsyncClient, tenant: Tenant) -> None:
    budi = (await conversation_of(client, tenant, "Budi Santoso"))["contact"]
    path = f"/api/v1/contacts/{budi['id']}"
    changed = await client.patch(
        path,
        json={
            "display_name": " Pak Budi (grosir) ",
            "notes": "Suka kirim via JNE",
            "tags": [" VIP ", "grosir", "vip", "Grosir"],
        },
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    contact = (await client.get(path, headers=tenant.headers)).json()
    assert contact["name"] == "Pak Budi (grosir)"
    assert contact["profile_name"] == "Budi Santoso"
    assert contact["notes"] == "Suka kirim via JNE"
    assert contact["tags"] == ["VIP", "grosir"]
    assert await names(client, tenant, q="grosir") == ["Pak Budi (grosir)"]
    tags_only = await client.patch(path, json={"tags": []}, headers=tenant.headers)
    assert (tags_only.json()["tags"], tags_only.json()["notes"]) == ([], "Suka kirim via JNE")
    cleared = await client.patch(path, json={"display_name": None, "notes": ""}, headers=tenant.headers)
    assert (cleared.json()["name"], cleared.json()["notes"]) == ("Budi Santoso", None)


@pytest.mark.usefixtures("three")
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tags": [f"t{i}" for i in range(21)]}, "a contact has at most 20 tags (got 21)"),
        ({"tags": ["ok", "x" * 41]}, "tag 2 must be 1 to 40 characters (it has 41)"),
        ({"tags": ["ok", "   "]}, "tag 2 must be 1 to 40 characters (it has 0)"),
        ({"notes": "n" * 5001}, "notes is at most 5,000 characters (got 5,001)"),
        ({"display_name": "d" * 257}, "display_name is at most 256 characters (got 257)"),
    ],
)
async def test_contact_limits_answer_a_clear_422(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], message: str
) -> None:
    budi = (await conversation_of(client, tenant, "Budi Santoso"))["contact"]
    response = await client.patch(f"/api/v1/contacts/{budi['id']}", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == message
    assert response.json()["error"]["details"][0]["loc"] == ["body", next(iter(body))]


@pytest.mark.usefixtures("three")
@pytest.mark.parametrize(
    "body", [{}, {"tags": None}, {"tags": "vip"}, {"tags": [1]}, {"notes": 5}, {"email": "x"}]
)
async def test_contact_changes_of_the_wrong_shape_are_422(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    budi = (await conversation_of(client, tenant, "Budi Santoso"))["contact"]
    response = await client.patch(f"/api/v1/contacts/{budi['id']}", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text


@pytest.mark.usefixtures("three")
async def test_contacts_search_by_name_number_and_tag_within_the_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, webhook: WebhookPoster
) -> None:
    contacts = {c["contact"]["name"]: c["contact"]["id"] for c in await listing(client, tenant)}
    for name, tags in (("Budi Santoso", ["VIP", "grosir"]), ("Siti Rahma", ["vip"])):
        path = f"/api/v1/contacts/{contacts[name]}"
        assert (await client.patch(path, json={"tags": tags}, headers=tenant.headers)).status_code == 200

    async def found(headers: dict[str, str], **params: str) -> list[str]:
        response = await client.get("/api/v1/contacts", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [c["name"] for c in response.json()["data"]]

    assert await found(tenant.headers, tag="vip") == ["Siti Rahma", "Budi Santoso"]
    assert await found(tenant.headers, tag="GROSIR") == ["Budi Santoso"]
    assert await found(tenant.headers, tag="vi") == []
    assert await found(tenant.headers, q="0855 1111") == ["Andi"]
    assert await found(tenant.headers, q="siti", tag="vip") == ["Siti Rahma"]
    paged = await client.get("/api/v1/contacts", params={"limit": 2}, headers=tenant.headers)
    rest = await client.get(
        "/api/v1/contacts", params={"cursor": paged.json()["next_cursor"]}, headers=tenant.headers
    )
    assert len(paged.json()["data"]) + len(rest.json()["data"]) == 3
    # The other workspace sees none of them, not even by id, and cannot change them.
    assert await found(other_tenant.headers, tag="vip") == []
    assert await found(other_tenant.headers) == []
    budi_path = f"/api/v1/contacts/{contacts['Budi Santoso']}"
    assert (await client.get(budi_path, headers=other_tenant.headers)).status_code == 404
    assert (
        await client.patch(budi_path, json={"notes": "x"}, headers=other_tenant.headers)
    ).status_code == 404
