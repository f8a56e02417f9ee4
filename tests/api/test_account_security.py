"""Accounts: login lockout, password policy, session expiry, API key scopes and revocation, the audit log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
import time_machine
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from layanify.accounts.models import Role
from layanify.app import create_app
from layanify.cli.main import app as cli
from layanify.config import get_settings
from layanify.db.session import Sessionmaker
from tests import factories
from tests.conftest import Tenant, make_settings

LOGIN = "/api/v1/auth/login"
CUSTOMER = "+6281234567890"
TEMPLATE = {"type": "template", "name": "order_update", "language": "id", "template_params": ["A1", "B"]}


async def log_in(client: httpx.AsyncClient, email: str, password: str, **headers: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password}, headers=headers)


async def fail(client: httpx.AsyncClient, email: str, times: int) -> list[httpx.Response]:
    return [await log_in(client, email, f"wrong password {i}") for i in range(times)]


@asynccontextmanager
async def app_client(database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with some settings changed."""
    application = create_app(make_settings(database_url, **overrides), migrate=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def csrf_of(client: httpx.AsyncClient) -> dict[str, str]:
    me = await client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return {"X-CSRF-Token": me.json()["csrf_token"]}


async def audit(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


# --- login throttling ------------------------------------------------------------------------------


async def test_five_failures_lock_the_email_with_429_retry_after_and_the_ui_says_when(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    with time_machine.travel(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), tick=True) as traveller:
        answers = await fail(client, tenant.email, 5)
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
        locked = answers[-1]
        assert locked.json()["error"]["code"] == "login_locked"
        assert 890 <= int(locked.headers["Retry-After"]) <= 900
        assert "try again in 15 minutes" in locked.json()["error"]["message"]
        assert "set-cookie" not in locked.headers

        # The right password is refused too while the lock lasts, on the API and in the UI.
        right = await log_in(client, tenant.email, tenant.password)
        assert right.status_code == 429
        assert int(right.headers["Retry-After"]) <= 900
        page = await client.post(
            "/login",
            data={"email": tenant.email, "password": tenant.password},
            headers={"Accept-Language": "en"},
        )
        assert page.status_code == 429
        assert page.headers["Retry-After"] == right.headers["Retry-After"]
        assert "Too many failed logins for this email. Try again in 15 minutes (at 10:15" in page.text
        assert "layanify_session" not in page.headers.get("set-cookie", "")
        indonesian = await client.post("/login", data={"email": tenant.email, "password": tenant.password})
        assert "Terlalu banyak percobaan masuk yang gagal untuk email ini" in indonesian.text

        traveller.shift(timedelta(minutes=15, seconds=1))
        assert (await log_in(client, tenant.email, tenant.password)).status_code == 200


async def test_a_successful_login_resets_the_failure_count(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert {a.status_code for a in await fail(client, tenant.email, 4)} == {401}
    assert (await log_in(client, tenant.email, tenant.password)).status_code == 200
    assert {a.status_code for a in await fail(client, tenant.email, 4)} == {401}
    assert (await fail(client, tenant.email, 1))[0].status_code == 429


async def test_an_unknown_email_is_answered_exactly_like_a_known_one(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    known = await fail(client, tenant.email, 5)
    unknown = await fail(client, "nobody@tokobudi.id", 5)
    for mine, theirs in zip(known, unknown, strict=True):
        assert mine.status_code == theirs.status_code
        assert mine.json()["error"]["code"] == theirs.json()["error"]["code"]
        assert (
            mine.json()["error"]["message"].split("(")[0] == theirs.json()["error"]["message"].split("(")[0]
        )
    assert known[0].json() == unknown[0].json()
    assert "Retry-After" in unknown[-1].headers


async def test_many_emails_from_one_address_are_slowed_down(database_url: str, tenant: Tenant) -> None:
    async with app_client(database_url, login_ip_max_failures=6) as client:
        answers = [await log_in(client, f"guess{i}@tokobudi.id", "Password123!") for i in range(6)]
        assert [a.status_code for a in answers] == [401] * 5 + [429]
        assert answers[-1].json()["error"]["code"] == "login_throttled"
        assert "from your network" in answers[-1].json()["error"]["message"]
        assert int(answers[-1].headers["Retry-After"]) > 0
        # Even a right password from that address waits (the email itself is not locked).
        assert (await log_in(client, tenant.email, tenant.password)).status_code == 429


async def test_logins_failures_and_lockouts_are_audited_without_the_email(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await fail(client, "stranger@example.com", 5)
    await fail(client, tenant.email, 5)
    await client.post(
        "/login", data={"email": "stranger@example.com", "password": "x"}
    )  # locked: not written
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=16), tick=True):
        assert (await log_in(client, tenant.email, tenant.password)).status_code == 200

    entries = await audit(client, tenant, limit=200)
    actions = [e["action"] for e in entries]
    assert actions.count("auth.login_failed") == 5  # only the workspace's own user's failures
    assert actions.count("auth.locked") == 1
    assert actions[0] == "auth.login"  # newest first
    login = entries[0]
    assert login["actor_user_id"] == tenant.user_id
    assert login["ip"] == "127.0.0.1"
    failed = next(e for e in entries if e["action"] == "auth.login_failed")
    assert failed["actor_user_id"] is None
    assert (failed["target_type"], failed["target_id"]) == ("user", str(tenant.user_id))
    assert failed["details"] == {"reason": "wrong_password"}
    dumped = json.dumps(entries)
    assert tenant.email not in dumped
    assert "wrong password" not in dumped
    assert [e["action"] for e in await audit(client, tenant, action="auth.locked")] == ["auth.locked"]
    assert {e["action"] for e in await audit(client, tenant, action="auth.")} == {
        "auth.login",
        "auth.login_failed",
        "auth.locked",
    }


async def test_unknown_emails_failures_are_recorded_outside_any_workspace(
    sessionmaker: Sessionmaker, client: httpx.AsyncClient
) -> None:
    from sqlalchemy import select

    from layanify.audit.models import AuditEntry

    await fail(client, "stranger@example.com", 5)
    async with sessionmaker() as session:
        rows = list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())
    assert [r.action for r in rows] == ["auth.login_failed"] * 5 + ["auth.locked"]
    for row in rows:
        assert row.workspace_id is None
        assert row.actor_user_id is None
        assert row.target_id is None
        assert "stranger" not in json.dumps(row.details)
    assert rows[0].details == {"reason": "unknown_email"}


# --- password policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("kopi-gayo", "at least 12 characters"),
        ("081234567890123", "only digits"),
        ("OWNER@tokobudi.id", "your email address"),
        ("password1234", "most common"),
        ("aaaaaaaaaaaaaa", "most common"),
    ],
)
async def test_a_weak_new_password_is_refused_with_the_reason(
    client: httpx.AsyncClient, tenant: Tenant, password: str, reason: str
) -> None:
    await log_in(client, tenant.email, tenant.password)
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": tenant.password, "new_password": password},
        headers=await csrf_of(client),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "weak_password"
    assert reason in response.json()["error"]["message"]


async def test_the_workspace_name_is_not_a_password(sessionmaker: Sessionmaker) -> None:
    from layanify.accounts import service
    from layanify.db.session import unit_of_work
    from layanify.errors import Unprocessable

    with pytest.raises(Unprocessable, match="the workspace's name"):
        async with unit_of_work(sessionmaker) as session:
            await service.create_user(
                session,
                email="sari@toko.id",
                password="Toko Sari Jaya Abadi",
                workspace_name="toko sari jaya abadi",
            )


async def test_changing_the_password_ends_the_other_sessions(
    database_url: str, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with app_client(database_url) as laptop:
        await log_in(laptop, tenant.email, tenant.password)
        await log_in(client, tenant.email, tenant.password)
        wrong = await client.post(
            "/api/v1/auth/password",
            json={"current_password": "not it at all", "new_password": "kopi gayo dua ratus"},
            headers=await csrf_of(client),
        )
        assert wrong.status_code == 403
        changed = await client.post(
            "/api/v1/auth/password",
            json={"current_password": tenant.password, "new_password": "kopi gayo dua ratus"},
            headers=await csrf_of(client),
        )
        assert changed.status_code == 204
        assert (await client.get("/api/v1/me")).status_code == 200  # this session goes on
        assert (await laptop.get("/api/v1/me")).status_code == 401
        assert (await log_in(laptop, tenant.email, tenant.password)).status_code == 401
        assert (await log_in(laptop, tenant.email, "kopi gayo dua ratus")).status_code == 200
        assert [e["action"] for e in await audit(client, tenant, action="auth.password_changed")] == [
            "auth.password_changed"
        ]


async def test_an_api_key_cannot_change_the_password(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": tenant.password, "new_password": "kopi gayo dua ratus"},
        headers=tenant.headers,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "session_required"


# --- sessions --------------------------------------------------------------------------------------


async def test_an_idle_session_expires_and_a_used_one_slides(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    with time_machine.travel(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), tick=True) as traveller:
        await log_in(client, tenant.email, tenant.password)
        for _ in range(3):  # used every 7 hours: 21 hours in, still logged in
            traveller.shift(timedelta(hours=7))
            assert (await client.get("/api/v1/me")).status_code == 200
        assert (await client.get("/inbox")).status_code == 200
        traveller.shift(timedelta(hours=8, minutes=2))
        expired = await client.get("/api/v1/me")
        assert expired.status_code == 401
        assert expired.json()["error"]["code"] == "session_expired"
        page = await client.get("/inbox")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=/inbox"


async def test_a_session_ends_at_its_maximum_age_even_when_used(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    with time_machine.travel(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), tick=True) as traveller:
        await log_in(client, tenant.email, tenant.password)
        for _ in range(49):  # 14 days and 7 hours in, used every 7 hours
            traveller.shift(timedelta(hours=7))
            answer = await client.get("/api/v1/me")
            if answer.status_code != 200:
                break
        assert answer.status_code == 401
        assert datetime.now(UTC) - datetime(2026, 11, 26, 3, 0, tzinfo=UTC) > timedelta(days=14)


async def test_a_logged_out_session_cookie_cannot_be_used_again(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await log_in(client, tenant.email, tenant.password)
    cookie = client.cookies["layanify_session"]
    assert (await client.post("/api/v1/auth/logout", headers=await csrf_of(client))).status_code == 204
    client.cookies.set("layanify_session", cookie)  # a copy kept by an attacker
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/inbox")).status_code == 303


async def test_the_ui_logout_ends_the_session_too(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await client.post("/login", data={"email": tenant.email, "password": tenant.password})
    cookie = client.cookies["layanify_session"]
    assert (await client.post("/logout", headers=await csrf_of(client))).status_code == 303
    client.cookies.set("layanify_session", cookie)
    assert (await client.get("/api/v1/me")).status_code == 401
    actions = [e["action"] for e in await audit(client, tenant)]
    assert actions[:2] == ["auth.logout", "auth.login"]


async def test_logout_everywhere_ends_every_session_of_the_user(
    database_url: str, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with app_client(database_url) as phone:
        await log_in(phone, tenant.email, tenant.password)
        await log_in(client, tenant.email, tenant.password)
        response = await client.post("/api/v1/auth/logout?everywhere=true", headers=await csrf_of(client))
        assert response.status_code == 204
        assert (await phone.get("/api/v1/me")).status_code == 401
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_the_csrf_token_stays_valid_while_the_session_is_used(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    with time_machine.travel(datetime(2026, 11, 26, 3, 0, tzinfo=UTC), tick=True) as traveller:
        await log_in(client, tenant.email, tenant.password)
        headers = await csrf_of(client)
        traveller.shift(timedelta(hours=2))
        assert (await client.get("/api/v1/me")).json()["csrf_token"] == headers["X-CSRF-Token"]
        response = await client.patch(
            f"/api/v1/numbers/{tenant.number_id}", json={"display_name": "Toko Budi Pusat"}, headers=headers
        )
        assert response.status_code == 200, response.text


# --- API keys: scopes and revocation ----------------------------------------------------------------


async def new_key(client: httpx.AsyncClient, tenant: Tenant, *scopes: str, name: str = "") -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": name, "scopes": list(scopes)}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def test_a_read_key_reads_but_cannot_send(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await new_key(client, tenant, "read", name="dashboard")
    assert key["scopes"] == ["read"]
    assert (await client.get("/api/v1/conversations", headers=bearer(key))).status_code == 200
    assert (await client.get("/api/trpc/whatsapp.getNumbers", headers=bearer(key))).status_code == 200
    refused = await client.post(
        "/api/v1/messages",
        json={"number_id": tenant.number_id, "to": CUSTOMER, "content": TEMPLATE},
        headers=bearer(key),
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "`send` scope" in refused.json()["error"]["message"]
    assert refused.json()["error"]["details"] == [{"required_scope": "send"}]


async def test_a_send_key_sends_but_cannot_change_settings(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await new_key(client, tenant, "send")
    sent = await client.post(
        "/api/v1/messages",
        json={"number_id": tenant.number_id, "to": CUSTOMER, "content": TEMPLATE},
        headers=bearer(key),
    )
    assert sent.status_code == 202, sent.text
    settings = await client.put(f"/api/v1/numbers/{tenant.number_id}/settings", json={}, headers=bearer(key))
    assert settings.status_code == 403
    assert settings.json()["error"]["code"] == "insufficient_scope"
    assert "`admin` scope" in settings.json()["error"]["message"]
    trpc = await client.post(
        "/api/trpc/whatsapp.deleteNumber", json={"id": tenant.number_id}, headers=bearer(key)
    )
    assert trpc.status_code == 403
    # A key never makes a wider one (creating keys needs `admin` in the first place).
    assert (await client.post("/api/v1/api-keys", json={}, headers=bearer(key))).status_code == 403


async def test_keys_without_a_scope_are_admin_and_sessions_are_not_scoped(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    listed = (await client.get("/api/v1/api-keys", headers=tenant.headers)).json()
    assert [k["scopes"] for k in listed] == [["admin"]]  # the tenant's key, made without a scope
    assert (
        await client.put(f"/api/v1/numbers/{tenant.number_id}/settings", json={}, headers=tenant.headers)
    ).status_code != 403
    await log_in(client, tenant.email, tenant.password)
    assert (await client.get("/api/v1/api-keys")).status_code == 200


async def test_a_revoked_key_is_refused_and_listed_as_revoked(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    key = await new_key(client, tenant, "read", name="old integration")
    assert (await client.get("/api/v1/me", headers=bearer(key))).status_code == 200
    agent_key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    agent = {"Authorization": f"Bearer {agent_key}"}
    # An agent sees and revokes only their own keys; another's is not found.
    assert len((await client.get("/api/v1/api-keys", headers=agent)).json()) == 1
    assert (await client.delete(f"/api/v1/api-keys/{key['id']}", headers=agent)).status_code == 404

    assert (await client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.headers)).status_code == 204
    refused = await client.get("/api/v1/me", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"

    listed = await client.get("/api/v1/api-keys", headers=tenant.headers)
    [shown] = [k for k in listed.json() if k["id"] == key["id"]]
    assert shown["revoked_at"] is not None
    assert shown["prefix"] == key["prefix"]
    assert key["key"].startswith(shown["prefix"])
    assert set(shown) == {
        "id",
        "prefix",
        "name",
        "user_id",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    }
    assert shown["last_used_at"] is not None
    assert key["key"] not in listed.text
    assert tenant.api_key not in listed.text

    entries = [e for e in await audit(client, tenant, action="apikey.") if e["target_id"] == str(key["id"])]
    assert [e["action"] for e in entries] == ["apikey.revoked", "apikey.created"]
    assert entries[1]["details"] == {"user_id": tenant.user_id, "scopes": "read"}
    assert key["key"] not in json.dumps(entries)


async def test_another_workspaces_key_cannot_be_revoked(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    key = await new_key(client, tenant, "read")
    assert (
        await client.delete(f"/api/v1/api-keys/{key['id']}", headers=other_tenant.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/me", headers=bearer(key))).status_code == 200


# --- the audit log ---------------------------------------------------------------------------------


async def test_token_changes_are_audited_without_the_token(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = "EAAG-a-brand-new-token-9876"
    changed = await client.patch(
        f"/api/v1/numbers/{tenant.number_id}", json={"access_token": token}, headers=tenant.headers
    )
    assert changed.status_code == 200
    renamed = await client.patch(
        f"/api/v1/numbers/{tenant.number_id}", json={"display_name": "Toko Budi 2"}, headers=tenant.headers
    )
    assert renamed.status_code == 200
    [entry] = await audit(client, tenant, action="number.token_changed")
    assert entry["actor_user_id"] == tenant.user_id
    assert (entry["target_type"], entry["target_id"]) == ("number", str(tenant.number_id))
    assert entry["details"] == {"reason": "updated"}
    assert "9876" not in json.dumps(entry)


async def test_the_audit_log_is_for_owners_newest_first_in_pages(
    client: httpx.AsyncClient, sessionmaker: Sessionmaker, tenant: Tenant, other_tenant: Tenant
) -> None:
    for _ in range(3):
        await log_in(client, tenant.email, tenant.password)
    await log_in(client, other_tenant.email, other_tenant.password)
    first = await client.get(
        "/api/v1/audit", params={"limit": 2, "action": "auth.login"}, headers=tenant.headers
    )
    assert len(first.json()["data"]) == 2
    second = await client.get(
        "/api/v1/audit",
        params={"limit": 2, "action": "auth.login", "cursor": first.json()["next_cursor"]},
        headers=tenant.headers,
    )
    assert len(second.json()["data"]) == 1
    assert second.json()["next_cursor"] is None
    ids = [e["id"] for e in first.json()["data"] + second.json()["data"]]
    assert ids == sorted(ids, reverse=True)
    assert {e["workspace_id"] for e in first.json()["data"] + second.json()["data"]} == {tenant.workspace_id}

    agent_key = await factories.add_member(
        sessionmaker,
        email="agent@tokobudi.id",
        password="agent password",
        workspace="Toko Budi",
        role=Role.AGENT,
    )
    refused = await client.get("/api/v1/audit", headers={"Authorization": f"Bearer {agent_key}"})
    assert refused.status_code == 403


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def _cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI on the test database; its logging setup is undone after (later tests read the logs)."""
    monkeypatch.setenv("LAYANIFY_DATABASE_URL", database_url)
    monkeypatch.setenv("LAYANIFY_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    get_settings.cache_clear()
    structlog.configure(**structlog_config)
    root.handlers[:] = handlers
    root.setLevel(level)


async def invoke(*args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("_cli_env")
async def test_cli_creates_scoped_keys_lists_and_revokes_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    code, out, _ = await invoke(
        "apikey", "create", "--email", tenant.email, "--scope", "read", "--name", "bi"
    )
    assert code == 0, out
    key = out.strip()
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert (await client.post("/api/v1/api-keys", json={}, headers=headers)).status_code == 403

    code, out, _ = await invoke("apikey", "list")
    assert code == 0
    assert key not in out
    line = next(line for line in out.splitlines() if key.startswith(line.split("\t")[1]))
    assert "\tread\t" in line
    assert "active" in line
    prefix = line.split("\t")[1]

    code, out, _ = await invoke("apikey", "revoke", "--prefix", prefix)
    assert code == 0, out
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    code, _, err = await invoke("apikey", "revoke", "--prefix", prefix)
    assert code == 1
    assert "no active API key" in err

    code, out, _ = await invoke("audit", "list", "--action", "apikey.")
    assert code == 0
    assert out.splitlines()[0].split("\t")[1] == "apikey.revoked"
    assert tenant.email not in out


@pytest.mark.usefixtures("_cli_env")
async def test_cli_refuses_a_weak_password_and_an_unknown_scope() -> None:
    code, _, err = await invoke("user", "create", "--email", "a@toko.id", "--password", "123456789012345")
    assert code == 1
    assert "only digits" in err
    code, _, err = await invoke("apikey", "create", "--email", "a@toko.id", "--scope", "root")
    assert code == 2
    assert "root" in err
