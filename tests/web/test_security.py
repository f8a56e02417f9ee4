"""The browser-facing protections: login, CSRF on cookie sessions, security headers, no inline script."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Tenant


async def login(client: httpx.AsyncClient, tenant: Tenant) -> str:
    """Log in through the form; returns the page's CSRF token."""
    response = await client.post("/login", data={"email": tenant.email, "password": tenant.password})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/inbox"
    page = await client.get("/inbox")
    assert page.status_code == 200
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]{64})"', page.text)
    assert found, "the page carries its CSRF token for htmx"
    return found.group(1)


async def test_a_wrong_password_shows_the_form_again_with_an_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/login",
        data={"email": tenant.email, "password": "wrong password"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 401
    assert "Email or password is incorrect." in response.text
    assert tenant.email in response.text  # what was typed is kept
    assert "layanify_session" not in response.headers.get("set-cookie", "")


async def test_pages_need_a_login_and_come_back_after_it(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings"
    htmx = await client.get("/inbox/list", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/login")
    done = await client.post(
        "/login", data={"email": tenant.email, "password": tenant.password, "next": "/settings"}
    )
    assert done.headers["location"] == "/settings"
    evil = await client.post(
        "/login", data={"email": tenant.email, "password": tenant.password, "next": "//evil.example"}
    )
    assert evil.headers["location"] == "/inbox", "no open redirect"


async def test_the_session_cookie_is_httponly_and_samesite(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/login", data={"email": tenant.email, "password": tenant.password})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_a_cookie_request_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await login(client, tenant)
    url = f"/api/v1/numbers/{tenant.number_id}/settings"
    refused = await client.patch(url, json={"reply_delay_seconds": 9})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = await client.patch(url, json={"reply_delay_seconds": 9}, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    accepted = await client.patch(url, json={"reply_delay_seconds": 9}, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200
    assert (await client.get(url)).json()["reply_delay_seconds"] == 9
    # An API key is not sent by a browser on its own: no token needed.
    client.cookies.clear()
    keyed = await client.patch(url, json={"reply_delay_seconds": 3}, headers=tenant.headers)
    assert keyed.status_code == 200


async def test_pages_have_a_strict_content_security_policy_and_no_inline_script(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await login(client, tenant)
    for path in ("/login", "/inbox"):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text) is None, "no inline <script>"
        assert " style=" not in response.text
        assert " onclick=" not in response.text
    assert "content-security-policy" not in (await client.get("/api/v1/me")).headers


async def test_the_language_follows_the_browser_and_the_users_choice(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await login(client, tenant)
    english = await client.get("/inbox", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text
    assert ">Inbox<" in english.text
    indonesian = await client.get("/inbox", headers={"Accept-Language": "id-ID"})
    assert '<html lang="id">' in indonesian.text
    assert ">Kotak masuk<" in indonesian.text
    chosen = await client.post(
        "/language", data={"language": "en"}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert chosen.status_code == 204
    again = await client.get("/inbox", headers={"Accept-Language": "id-ID"})
    assert '<html lang="en">' in again.text
