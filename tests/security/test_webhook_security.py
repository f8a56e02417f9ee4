"""Webhook security at the edge: IP allow-list, trusted proxies, body limits, HSTS, the public base URL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import structlog
import structlog.testing

from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.observability import get_logger
from layanify.webhooks import routes as webhook_routes
from layanify.whatsapp.signature import sign
from tests.conftest import APP_SECRET, Tenant, fixture_bytes, stored_events
from tests.security.conftest import client_for, running_app

URL = "/api/webhooks/whatsapp"
META = "173.252.64.0/18, 2a03:2880::/32"  # what an operator would copy from Meta's list
HSTS = "max-age=31536000; includeSubDomains"


async def events_stored(sessionmaker: Sessionmaker) -> int:
    return len(await stored_events(sessionmaker))


def signed(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(APP_SECRET, body), "Content-Type": "application/json"}


async def test_a_webhook_from_outside_the_allow_list_is_refused_unstored_and_logged_without_its_body(
    edge_settings: Callable[..., Settings],
    sessionmaker: Sessionmaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = fixture_bytes("text")
    # The log entries themselves, whatever earlier tests left logging configured with. A logger keeps
    # the configuration it was first used with (cache_logger_on_first_use): if an earlier test made the
    # receiver log and a later in-process CLI run configured logging again, capture_logs changes the new
    # configuration, not the one the receiver's logger holds, and sees nothing (it happened in a full
    # run). So the receiver's logger is made anew, and warnings are let through whatever level was set.
    keep = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    monkeypatch.setattr(webhook_routes, "log", get_logger(webhook_routes.__name__))
    try:
        with structlog.testing.capture_logs() as entries:
            async with running_app(edge_settings(webhook_allowed_ips=META)) as app:
                async with client_for(app, peer="203.0.113.9") as stranger:
                    refused = await stranger.post(URL, content=body, headers=signed(body))
                async with client_for(app, peer="173.252.88.1") as meta:
                    accepted = await meta.post(URL, content=body, headers=signed(body))
    finally:
        structlog.configure(wrapper_class=keep)

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ip_not_allowed"
    assert accepted.status_code == 200
    assert await events_stored(sessionmaker) == 1  # Meta's only
    out = "\n".join(repr(entry) for entry in entries)
    assert "ip_not_allowed" in out
    assert "203.0.113.9" in out
    assert "wamid" not in out  # nothing of the body
    assert "Budi" not in out


async def test_an_empty_allow_list_accepts_any_address_with_a_valid_signature(
    edge_settings: Callable[..., Settings], sessionmaker: Sessionmaker
) -> None:
    body = fixture_bytes("text")
    async with running_app(edge_settings()) as app, client_for(app, peer="203.0.113.9") as anyone:
        assert (await anyone.post(URL, content=body, headers=signed(body))).status_code == 200
        unsigned = await anyone.post(URL, content=body)
    assert unsigned.status_code == 401  # the signature is checked whatever the address
    assert await events_stored(sessionmaker) == 1


async def test_behind_a_trusted_proxy_the_allow_list_sees_the_forwarded_client(
    edge_settings: Callable[..., Settings], sessionmaker: Sessionmaker
) -> None:
    body = fixture_bytes("text")
    settings = edge_settings(webhook_allowed_ips=META, trusted_proxies="10.0.0.0/8")
    async with running_app(settings) as app, client_for(app, peer="10.0.0.2") as proxy:
        from_meta = await proxy.post(
            URL, content=body, headers=signed(body) | {"X-Forwarded-For": "173.252.88.1"}
        )
        forged = await proxy.post(  # the client wrote Meta's address itself; the proxy appended the real one
            URL, content=body, headers=signed(body) | {"X-Forwarded-For": "173.252.88.1, 203.0.113.9"}
        )
        no_header = await proxy.post(URL, content=body, headers=signed(body))
    assert [from_meta.status_code, forged.status_code, no_header.status_code] == [200, 403, 403]
    assert await events_stored(sessionmaker) == 1


async def test_an_untrusted_peer_cannot_claim_an_allowed_address(
    edge_settings: Callable[..., Settings], sessionmaker: Sessionmaker
) -> None:
    body = fixture_bytes("text")
    settings = edge_settings(webhook_allowed_ips=META, trusted_proxies="10.0.0.0/8")
    async with running_app(settings) as app, client_for(app, peer="203.0.113.9") as spoofer:
        response = await spoofer.post(
            URL, content=body, headers=signed(body) | {"X-Forwarded-For": "173.252.88.1"}
        )
    assert response.status_code == 403
    assert await events_stored(sessionmaker) == 0


async def test_the_app_sees_the_real_client_and_scheme_behind_a_trusted_proxy(
    edge_settings: Callable[..., Settings],
) -> None:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "client": ("10.0.0.2", 51000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"x-forwarded-for", b"198.51.100.7"),
            (b"x-forwarded-proto", b"https"),
        ],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with running_app(edge_settings(trusted_proxies="10.0.0.0/8")) as app:
        await app(scope, receive, send)
    assert sent[0]["status"] == 200
    # What request.client and request.url show every route, the login throttle and the audit log included.
    assert scope["client"][0] == "198.51.100.7"
    assert scope["scheme"] == "https"


async def test_a_webhook_over_three_megabytes_is_refused_before_it_is_read(
    edge_settings: Callable[..., Settings], sessionmaker: Sessionmaker
) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[],"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'
    async with running_app(edge_settings()) as app, client_for(app) as meta:
        declared = await meta.post(URL, content=body, headers=signed(body))

        async def chunks() -> Any:  # no Content-Length: the limit applies while reading
            for start in range(0, len(body), 256 * 1024):
                yield body[start : start + 256 * 1024]

        streamed = await meta.post(URL, content=chunks(), headers=signed(body))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert await events_stored(sessionmaker) == 0


def production_settings(edge_settings: Callable[..., Settings]) -> Settings:
    return edge_settings(
        env="production",
        secret_key="k" * 48,
        public_base_url="https://wa.example.com",
    )


async def test_every_answer_in_production_carries_hsts(
    edge_settings: Callable[..., Settings], tenant: Tenant
) -> None:
    body = fixture_bytes("text")
    big = b'{"a":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    async with running_app(production_settings(edge_settings)) as app, client_for(app) as http:
        answers = {
            "login page": await http.get("/login"),
            "page needing login": await http.get("/inbox"),
            "api without credentials": await http.get("/api/v1/conversations"),
            "api": await http.get("/api/v1/conversations", headers=tenant.headers),
            "api not found": await http.get("/api/v1/conversations/999999", headers=tenant.headers),
            "api validation error": await http.post("/api/v1/messages", json={}, headers=tenant.headers),
            "api body too large": await http.post(
                "/api/v1/messages", content=big, headers=tenant.headers | {"Content-Type": "application/json"}
            ),
            "unknown path": await http.get("/nowhere"),
            "static": await http.get("/static/app.css"),
            "openapi": await http.get("/openapi.json"),
            "health": await http.get("/healthz"),
            "trpc": await http.get("/api/trpc/whatsapp.getNumbers"),
            "webhook handshake": await http.get(URL),
            "webhook accepted": await http.post(URL, content=body, headers=signed(body)),
            "webhook refused": await http.post(URL, content=body),
        }
    missing = {
        name: r.status_code
        for name, r in answers.items()
        if r.headers.get("strict-transport-security") != HSTS
    }
    assert missing == {}
    assert answers["webhook accepted"].status_code == 200
    assert answers["api body too large"].status_code == 413


async def test_no_hsts_outside_production(edge_settings: Callable[..., Settings]) -> None:
    body = fixture_bytes("text")
    async with running_app(edge_settings()) as app, client_for(app) as http:
        for response in (await http.get("/login"), await http.post(URL, content=body, headers=signed(body))):
            assert "strict-transport-security" not in response.headers


async def test_the_settings_page_shows_the_webhook_url_on_the_public_base_url(
    edge_settings: Callable[..., Settings], tenant: Tenant
) -> None:
    settings = edge_settings(public_base_url="https://wa.example.com/")
    async with running_app(settings) as app, client_for(app) as browser:
        login = await browser.post(
            "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
        )
        assert login.status_code == 200, login.text
        page = await browser.get("/settings")
    assert page.status_code == 200
    assert "https://wa.example.com/api/webhooks/whatsapp" in page.text


def test_serve_leaves_forwarded_headers_to_the_app() -> None:
    """uvicorn's own X-Forwarded-* handling (it trusts 127.0.0.1 by default) is off: one rule, ours."""
    import inspect

    from layanify.cli import main

    assert "proxy_headers=False" in inspect.getsource(main.serve)


def test_hsts_value_matches_the_middleware() -> None:
    from layanify.webhooks.routes import HSTS as WEBHOOK_HSTS

    assert WEBHOOK_HSTS[1].decode() == HSTS
    assert httpx.Headers([WEBHOOK_HSTS]).get("strict-transport-security") == HSTS
