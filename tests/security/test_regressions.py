"""The server errors and lost events the fuzzing found, each pinned by the smallest case that showed it.

1. A NUL character in a request (query parameter or JSON string) reached PostgreSQL, which refused
   it: a 500 on `GET /api/v1/audit?action=`, `GET /api/v1/contacts?q=`, `POST /api/v1/auth/login`
   (unauthenticated) and any other route that queries or stores the text. Now 422 `invalid_text`.
2. A NUL in a webhook (a profile name, a message text) failed the event's every attempt on PostgreSQL
   until it was given up: the customer's message was lost. NULs are now dropped while parsing.
3. A webhook nested deeper than any of Meta's failed on its retries with RecursionError/encoding
   errors instead of once with a clear PayloadError.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.contacts.models import Contact
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.whatsapp.payloads import MAX_DEPTH, PayloadError, changes_of, without_nul
from tests.conftest import Tenant, WebhookPoster, fixture
from tests.security.test_payload_fuzz import load_events, run_worker, store_events


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/v1/audit?action=auth.%00", None),
        ("GET", "/api/v1/contacts?q=Bu%00di", None),
        ("GET", "/api/v1/conversations?q=%00", None),
        ("PATCH", "/api/v1/contacts/1", {"display_name": "Bu\u0000di"}),
    ],
)
async def test_a_nul_in_a_request_is_a_clear_422_not_a_500(
    client: httpx.AsyncClient,
    tenant: Tenant,
    webhook: WebhookPoster,
    engine: AsyncEngine,
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    await webhook.deliver("text")  # contact 1
    response = await client.request(method, url, json=body, headers=tenant.headers)
    if engine.dialect.name == "postgresql":
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_text"
    else:  # SQLite stores NUL: the request is simply answered
        assert response.status_code < 500, response.text


async def test_a_nul_in_the_login_email_is_no_server_error(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": "a\u0000@x.id", "password": "whatever"})
    assert response.status_code == (422 if engine.dialect.name == "postgresql" else 401), response.text


async def test_a_nul_in_a_webhook_is_dropped_and_the_message_kept(
    tenant: Tenant, sessionmaker: Sessionmaker, settings: Any, webhook: WebhookPoster
) -> None:
    doc = fixture("text")
    value = doc["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["profile"]["name"] = "Bu\u0000di"
    value["messages"][0]["text"]["body"] = "Halo\u0000 kak"
    await webhook.deliver(doc)
    async with unit_of_work(sessionmaker) as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        message = (await session.execute(select(Message))).scalar_one()
    assert contact.profile_name == "Budi"
    assert message.content["text"] == "Halo kak"


async def test_a_webhook_nested_deeper_than_meta_ever_does_fails_once_with_a_payload_error(
    tenant: Tenant, sessionmaker: Sessionmaker, settings: Any
) -> None:
    doc = fixture("text")
    nested: Any = "deep"
    for _ in range(400):
        nested = [nested]
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = nested
    [event_id] = await store_events(sessionmaker, [json.dumps(doc).encode()])
    await run_worker(sessionmaker, settings)
    [event] = await load_events(sessionmaker, [event_id])
    assert event.status == "failed"
    assert event.attempts == 1
    assert (event.last_error or "").startswith("PayloadError: nested deeper than")


def test_without_nul_cleans_keys_and_values_and_bounds_depth() -> None:
    assert without_nul({"a\u0000": ["x\u0000y", 1, None, {"k": "\u0000"}]}) == {
        "a": ["xy", 1, None, {"k": ""}]
    }
    deep: Any = {}
    for _ in range(MAX_DEPTH + 2):
        deep = {"d": deep}
    with pytest.raises(PayloadError):
        changes_of(json.dumps({"entry": [deep]}).encode())
    doc = fixture("text")
    assert [c.field for c in changes_of(json.dumps(doc).encode())] == ["messages"]  # real payloads pass
    # A raw body's escaped NUL is found even where the walk is skipped for bodies without one.
    doc["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Bu\u0000di"
    (change,) = changes_of(json.dumps(doc).encode())
    assert change.value["contacts"][0]["profile"]["name"] == "Budi"
