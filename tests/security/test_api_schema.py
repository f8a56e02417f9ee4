"""Schemathesis against the app's own OpenAPI schema: no operation answers a server error.

Every operation of `/openapi.json` gets generated requests — valid ones and deliberately invalid ones
(schemathesis' positive and negative modes) — sent in-process with a test tenant's API key to an app
whose workspace has a number, a contact, a conversation and messages, and whose Graph API is offline.
The check is schemathesis' `not_a_server_error`: nothing may answer 5xx (503 from the readiness probe
excepted: it is its contract). Requests are encoded by `requests` exactly as schemathesis would send
them, then replayed on the app through httpx; the event stream is read up to its first bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import ServerError
from schemathesis.generation import GenerationMode

from layanify.config import Settings
from layanify.db.session import Sessionmaker
from layanify.numbers.routes import PROCEDURES
from tests import factories
from tests.conftest import Tenant, WebhookPoster
from tests.security.conftest import FUZZ, OnLoop, beside_loop, client_for, count, running_app
from tests.security.test_payload_fuzz import json_values

EXAMPLES_PER_MODE = 6  # per operation: 6 valid-shaped and 6 invalid requests, at most
REQUEST_KEYS = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
STATUSES: dict[str, list[int]] = {}
STREAMS = {"GET /api/v1/events"}  # endless text/event-stream answers: read the head only


async def call_stream(app: FastAPI, request: httpx.Request) -> httpx.Response:
    """Call the app directly and stop at the response's first body bytes (for endless streams)."""
    started: dict[str, Any] = {}
    first_body = asyncio.Event()
    disconnect = asyncio.Event()
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": request.content, "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            first_body.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.url.path,
        "raw_path": request.url.raw_path.split(b"?", 1)[0],
        "query_string": request.url.query,
        "root_path": "",
        "client": ("127.0.0.1", 51000),
        "server": ("testserver", 80),
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
    }
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait(
        [task, asyncio.create_task(first_body.wait())], timeout=10, return_when=asyncio.FIRST_COMPLETED
    )
    disconnect.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(task, timeout=5)
    response = httpx.Response(started.get("status", 599), headers=started.get("headers", []), request=request)
    response.elapsed = timedelta(0)
    return response


def encoded(case: Any, api_key: str) -> requests.PreparedRequest:
    """The request schemathesis would send for the case, with the tenant's API key."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    arguments = {key: value for key, value in kwargs.items() if key in REQUEST_KEYS}
    arguments["headers"] = {**(arguments.get("headers") or {}), "Authorization": f"Bearer {api_key}"}
    return requests.Request(**arguments).prepare()


async def send_encoded(app: FastAPI, http: httpx.AsyncClient, label: str, prepared: Any) -> httpx.Response:
    headers = [(k, v) for k, v in prepared.headers.items() if k.lower() != "content-length"]
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
    request = http.build_request(prepared.method, prepared.url, headers=headers, content=body)
    if label in STREAMS:
        return await call_stream(app, request)
    return await http.send(request)


def targets_of(operation: Any) -> list[tuple[str, Any, dict[str, str] | None]]:
    """What to fuzz for an operation: itself, or the seed's tRPC route once per procedure it can call."""
    if "{procedure}" not in operation.path:
        return [(operation.label, operation, None)]
    method = operation.method.upper()
    return [
        (f"{method} /api/trpc/{name}", operation, {"procedure": name})
        for name, (methods, _) in sorted(PROCEDURES.items())
        if method in methods
    ]


def destructiveness(label: str) -> int:
    """Fuzz what deletes last (what it deletes is gone for the rest), and revoking API keys after all."""
    if "api-keys" in label and label.startswith("DELETE"):
        return 2
    return 1 if label.startswith("DELETE") or "delete" in label.lower() else 0


async def seed(
    sessionmaker: Sessionmaker, settings: Settings, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Something to find: messages in and out, a contact, a conversation, a processed event."""
    poster = WebhookPoster(http, sessionmaker, settings)
    await poster.deliver("text", "image", "reaction")
    await factories.create_outbound_message(sessionmaker, tenant, wamid="wamid.seeded-outbound")


@pytest.fixture
def api_settings(database_url: str) -> Settings:
    from tests.conftest import make_settings

    return make_settings(database_url)


async def test_no_operation_answers_a_server_error(
    api_settings: Settings, sessionmaker: Sessionmaker, tenant: Tenant, on_loop: OnLoop
) -> None:
    async with running_app(api_settings) as app, client_for(app) as http:
        await seed(sessionmaker, api_settings, http, tenant)
        schema = schemathesis.openapi.from_dict(app.openapi())
        targets = sorted(
            (target for result in schema.get_all_operations() for target in targets_of(result.ok())),
            key=lambda target: (destructiveness(target[0]), target[0]),
        )
        server_errors: dict[str, list[str]] = {}
        calls = 0

        def fuzz(
            label: str, operation: Any, path_parameters: dict[str, str] | None, mode: GenerationMode
        ) -> None:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @hypothesis_settings(FUZZ, max_examples=EXAMPLES_PER_MODE)
            @given(case=strategy)
            def property_(case: Any) -> None:
                nonlocal calls
                prepared = encoded(case, tenant.api_key)
                response = on_loop(send_encoded(app, http, operation.label, prepared))
                calls += 1
                STATUSES.setdefault(label, []).append(response.status_code)
                if operation.label == "GET /readyz" and response.status_code == 503:
                    return  # "not ready" is the probe's answer, not a failure
                case.validate_response(response, checks=[not_a_server_error])

            property_()

        def run_all() -> None:
            for label, operation, path_parameters in targets:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    try:
                        fuzz(label, operation, path_parameters, mode)
                    except Unsatisfiable:
                        continue  # nothing invalid can be made for it (no parameters): nothing to send
                    except Exception as exc:  # a 5xx (shrunk to its smallest case by Hypothesis)
                        server_errors.setdefault(label, []).append(f"{mode.value}: {exc}"[:2000])

        await beside_loop(run_all)

    count("schemathesis operations", len({operation.label for _, operation, _ in targets}))
    count("schemathesis calls", calls)
    count("schemathesis operations with a 5xx", len(server_errors))
    for statuses in STATUSES.values():
        for status in statuses:
            count(f"schemathesis answers {status // 100}xx")
    assert server_errors == {}


async def test_the_check_really_fails_on_a_server_error(app: FastAPI) -> None:
    """The harness's own guard: a 5xx answer does fail `not_a_server_error`."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    operation = schema["/healthz"]["GET"]
    case = operation.Case()
    request = httpx.Request("GET", "http://testserver/healthz")
    for status, fails in ((500, True), (503, True), (422, False), (200, False)):
        response = httpx.Response(status, json={}, request=request)
        response.elapsed = timedelta(0)
        if fails:
            with pytest.RaisesGroup(ServerError):
                case.validate_response(response, checks=[not_a_server_error])
        else:
            case.validate_response(response, checks=[not_a_server_error])


async def test_the_seed_trpc_procedures_answer_any_input_without_a_server_error(
    client: httpx.AsyncClient, tenant: Tenant, on_loop: OnLoop
) -> None:
    """The tRPC routes read their input themselves (the schema says nothing of it): fuzz it here."""
    calls = [
        (name, method) for name, (methods, _) in sorted(PROCEDURES.items()) for method in sorted(methods)
    ]

    @FUZZ
    @given(call=st.sampled_from(calls), data=json_values, as_query=st.booleans())
    def trpc_property(call: tuple[str, str], data: Any, as_query: bool) -> None:
        count("hypothesis examples: tRPC input")
        name, method = call
        url = f"/api/trpc/{name}"
        body = json.dumps(data).encode()
        if as_query or method == "GET":
            request = client.build_request(
                method, url, params={"input": body.decode()}, headers=tenant.headers
            )
        else:
            headers = tenant.headers | {"Content-Type": "application/json"}
            request = client.build_request(method, url, content=body, headers=headers)
        response = on_loop(client.send(request))
        assert response.status_code < 500, (response.status_code, response.text)

    await beside_loop(trpc_property)
