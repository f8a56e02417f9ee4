"""What answers without credentials: every route of the app, called without any, against an allow-list.

A route "requires credentials" when it answers 401 or sends the browser to the login page (directly,
or through a redirect to a page that does: `/` → `/inbox` → `/login`); anything else is reachable.
The reachable set must be exactly `REACHABLE`: a new route that forgets its auth dependency fails
here, and a route meant to be public has to be added here (and to docs/security.md).
"""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from layanify.numbers.routes import PROCEDURES
from layanify.webhooks.routes import WEBHOOK_PATH
from layanify.whatsapp.signature import sign
from tests.conftest import APP_SECRET
from tests.security.conftest import count

REACHABLE = {
    ("GET", "/login"),  # the login page
    ("POST", "/login"),  # its form (throttled)
    ("POST", "/language"),  # the login page's language switch: sets a cookie, nothing else
    ("POST", "/api/v1/auth/login"),  # the API's login (throttled like the form)
    ("POST", "/api/v1/auth/logout"),  # without a session it only deletes the cookie (204)
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", WEBHOOK_PATH),  # Meta's handshake: answers only with the verify token
    ("POST", WEBHOOK_PATH),  # Meta's events: stored only with a valid X-Hub-Signature-256
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/static/{path}"),
}


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers: FastAPI's routes, mounts and the raw webhook POST."""
    found = {("POST", WEBHOOK_PATH)}  # answered by LayanifyApp before routing
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if isinstance(route, Mount):
            found.add(("GET", path + "/{path}"))
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":  # HEAD is GET without the body
                found.add((method, path))
    return sorted(found)


def concrete(method: str, path: str) -> str:
    """A URL for the route: ids 1, a procedure callable with the method, an existing static file."""
    if "{procedure}" in path:
        name = next(name for name, (methods, _) in PROCEDURES.items() if method in methods)
        return path.replace("{procedure}", name)
    if path == "/static/{path}":
        return "/static/app.css"
    return re.sub(r"\{[^}]+\}", "1", path)


def requires_credentials(response: httpx.Response) -> bool:
    """401, or the browser sent to the login page (a redirect, or htmx's HX-Redirect)."""
    location = response.headers.get("location") or response.headers.get("hx-redirect") or ""
    return response.status_code == 401 or (
        response.status_code in (302, 303, 307) and location.startswith("/login")
    )


async def test_only_the_allow_listed_routes_answer_without_credentials(app: FastAPI) -> None:
    reachable: dict[tuple[str, str], int] = {}
    protected: list[tuple[str, str]] = []
    for method, path in routes(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anonymous:
            if (method, path) == ("POST", WEBHOOK_PATH):
                body = b'{"object":"whatsapp_business_account","entry":[]}'
                headers = {"X-Hub-Signature-256": sign(APP_SECRET, body)}  # Meta's, not a user's credential
                response = await anonymous.post(path, content=body, headers=headers)
            else:
                response = await anonymous.request(method, concrete(method, path))
                location = response.headers.get("location", "")
                if response.is_redirect and location.startswith("/") and not location.startswith("/login"):
                    response = await anonymous.get(location)  # where it sends the browser
        assert response.status_code < 500, (method, path, response.text)
        if requires_credentials(response):
            protected.append((method, path))
        else:
            reachable[(method, path)] = response.status_code
    count("surface: routes enumerated", len(reachable) + len(protected))
    count("surface: reachable without credentials", len(reachable))
    assert set(reachable) == REACHABLE, {
        "reachable but not allow-listed": sorted(set(reachable) - REACHABLE),
        "allow-listed but not reachable (or gone)": sorted(REACHABLE - set(reachable)),
    }
    assert not any(path.startswith("/api/trpc") for _, path in reachable)
    assert len(protected) > 50  # the enumeration really covered the app


async def test_the_webhook_post_without_a_valid_signature_is_refused(client: httpx.AsyncClient) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert (await client.post(WEBHOOK_PATH, content=body)).status_code == 401
    bad = {"X-Hub-Signature-256": sign("not-the-secret", body)}
    assert (await client.post(WEBHOOK_PATH, content=body, headers=bad)).status_code == 401


async def test_an_invalid_api_key_or_session_is_no_credential(client: httpx.AsyncClient) -> None:
    for headers in ({"Authorization": "Bearer nope"}, {"Cookie": "layanify_session=forged"}):
        response = await client.get("/api/v1/conversations", headers=headers)
        assert response.status_code == 401
        trpc = await client.get("/api/trpc/whatsapp.getNumbers", headers=headers)
        assert trpc.status_code == 401
