"""The Graph client through httpx.MockTransport: every request as Meta documents it, every error typed.

Response shapes: Meta's Cloud API reference (messages, media, phone numbers, message templates,
subscribed apps) and error codes page
(https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from layanify.whatsapp import errors
from layanify.whatsapp.client import GraphClient, MediaInfo, PhoneNumberInfo, SendResult
from layanify.whatsapp.outbound import build_message_body, parse_content

TOKEN = "EAAJBsecret-token-1234"
BASE = "https://graph.example.test"
PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NjZGQUQ1NUQ2RkQ3NjJEMTAA"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers from a queue."""

    def __init__(self, *responses: httpx.Response | Handler) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def client_for(recorder: Recorder) -> GraphClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return GraphClient(base_url=BASE + "/", version="v23.0", http=http)


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def meta_error(status: int, code: int, message: str, details: str = "details") -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "AbCdEfGh123",
            }
        },
    )


def assert_bearer(request: httpx.Request) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_send_message_posts_metas_body_and_reads_the_answer() -> None:
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": WAMID, "message_status": "accepted"}],
    }
    recorder = Recorder(ok(answer))
    body = build_message_body(
        "+16505551234", parse_content({"type": "text", "text": "Hi"}), callback_data="m-1"
    )
    async with client_for(recorder) as graph:
        result = await graph.send_message(PHONE_ID, TOKEN, body)
    assert result == SendResult(
        wa_id="16505551234", input="+16505551234", wamid=WAMID, message_status="accepted"
    )
    request = recorder.last
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v23.0/{PHONE_ID}/messages"
    assert_bearer(request)
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == body


async def test_send_message_without_message_status() -> None:
    recorder = Recorder(ok({"messaging_product": "whatsapp", "contacts": [], "messages": [{"id": WAMID}]}))
    async with client_for(recorder) as graph:
        result = await graph.send_message(PHONE_ID, TOKEN, {})
    assert result == SendResult(wa_id=None, input=None, wamid=WAMID, message_status=None)


@pytest.mark.parametrize("answer", [{}, {"messages": []}, {"messages": [{}]}, {"messages": "x"}, [1]])
async def test_send_message_with_a_malformed_200_is_a_server_error(answer: Any) -> None:
    recorder = Recorder(ok(answer))
    async with client_for(recorder) as graph:
        with pytest.raises(errors.ServerError, match="Malformed"):
            await graph.send_message(PHONE_ID, TOKEN, {})


async def test_non_json_200_is_a_server_error() -> None:
    recorder = Recorder(httpx.Response(200, text="<html>ok</html>"))
    async with client_for(recorder) as graph:
        with pytest.raises(errors.ServerError, match="not JSON"):
            await graph.send_message(PHONE_ID, TOKEN, {})


@pytest.mark.parametrize("typing", [False, True])
async def test_mark_read(typing: bool) -> None:
    recorder = Recorder(ok({"success": True}))
    async with client_for(recorder) as graph:
        assert await graph.mark_read(PHONE_ID, TOKEN, WAMID, typing=typing) is True
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/v23.0/{PHONE_ID}/messages")
    assert_bearer(request)
    expected: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    if typing:
        expected["typing_indicator"] = {"type": "text"}
    assert json.loads(request.content) == expected


async def test_upload_media_is_multipart_as_meta_documents() -> None:
    recorder = Recorder(ok({"id": "1037543291543636"}))
    async with client_for(recorder) as graph:
        media_id = await graph.upload_media(
            PHONE_ID, TOKEN, content=b"%PDF-1.4 fake", mime_type="application/pdf", filename="invoice.pdf"
        )
    assert media_id == "1037543291543636"
    request = recorder.last
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/v23.0/{PHONE_ID}/media")
    assert_bearer(request)
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    raw = request.read()
    assert b'name="messaging_product"\r\n\r\nwhatsapp\r\n' in raw
    assert b'name="type"\r\n\r\napplication/pdf\r\n' in raw
    assert (
        b'name="file"; filename="invoice.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 fake\r\n'
        in raw
    )


async def test_media_info() -> None:
    answer = {
        "messaging_product": "whatsapp",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1037543291543636&ext=1",
        "mime_type": "image/jpeg",
        "sha256": "e2a4b9f3c2d1",
        "file_size": 303833,
        "id": "1037543291543636",
    }
    recorder = Recorder(ok(answer))
    async with client_for(recorder) as graph:
        info = await graph.media_info("1037543291543636", TOKEN)
    assert info == MediaInfo(
        id="1037543291543636",
        url=str(answer["url"]),
        mime_type="image/jpeg",
        sha256="e2a4b9f3c2d1",
        file_size=303833,
    )
    assert (recorder.last.method, str(recorder.last.url)) == ("GET", f"{BASE}/v23.0/1037543291543636")
    assert_bearer(recorder.last)


async def test_download_media_uses_the_absolute_url_with_the_token() -> None:
    url = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2"
    recorder = Recorder(httpx.Response(200, content=b"\xff\xd8jpeg-bytes"))
    async with client_for(recorder) as graph:
        data = await graph.download_media(url, TOKEN, max_bytes=1000)
    assert data == b"\xff\xd8jpeg-bytes"
    assert str(recorder.last.url) == url
    assert_bearer(recorder.last)


async def test_download_media_stops_past_max_bytes() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a" * 600
        yield b"b" * 600

    streamed = httpx.Response(200, content=chunks())  # streamed: no content-length
    declared = httpx.Response(200, content=b"c" * 2000)
    recorder = Recorder(streamed, declared)
    async with client_for(recorder) as graph:
        with pytest.raises(errors.MediaTooLarge):
            await graph.download_media("https://cdn.example/m", TOKEN, max_bytes=1000)
        with pytest.raises(errors.MediaTooLarge, match="2000 bytes"):
            await graph.download_media("https://cdn.example/m", TOKEN, max_bytes=1000)


async def test_download_media_errors_are_typed() -> None:
    recorder = Recorder(meta_error(401, 190, "Error validating access token"))
    async with client_for(recorder) as graph:
        with pytest.raises(errors.TokenInvalid):
            await graph.download_media("https://cdn.example/m", TOKEN, max_bytes=1000)


async def test_delete_media() -> None:
    recorder = Recorder(ok({"success": True}))
    async with client_for(recorder) as graph:
        assert await graph.delete_media("1037543291543636", TOKEN) is True
    assert (recorder.last.method, str(recorder.last.url)) == ("DELETE", f"{BASE}/v23.0/1037543291543636")
    assert_bearer(recorder.last)


async def test_phone_number() -> None:
    answer = {
        "verified_name": "Lucky Shrub",
        "display_phone_number": "+1 631-555-5555",
        "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "status": "CONNECTED",
        "is_official_business_account": False,
        "id": PHONE_ID,
    }
    recorder = Recorder(ok(answer))
    async with client_for(recorder) as graph:
        info = await graph.phone_number(PHONE_ID, TOKEN)
    assert info == PhoneNumberInfo(
        id=PHONE_ID,
        display_phone_number="+1 631-555-5555",
        verified_name="Lucky Shrub",
        quality_rating="GREEN",
        code_verification_status="VERIFIED",
        name_status="APPROVED",
        platform_type="CLOUD_API",
        status="CONNECTED",
        throughput_level="STANDARD",
        raw=answer,
    )
    assert info.raw["is_official_business_account"] is False
    request = recorder.last
    assert request.method == "GET"
    assert request.url.path == f"/v23.0/{PHONE_ID}"
    assert request.url.params["fields"] == (
        "verified_name,display_phone_number,quality_rating,code_verification_status,name_status,"
        "platform_type,throughput,status"
    )
    assert_bearer(request)


async def test_waba_phone_numbers() -> None:
    answer = {
        "data": [{"id": PHONE_ID, "display_phone_number": "15550783881", "quality_rating": "UNKNOWN"}],
        "paging": {"cursors": {"before": "QVFI", "after": "QVFJ"}},
    }
    recorder = Recorder(ok(answer))
    async with client_for(recorder) as graph:
        numbers = await graph.waba_phone_numbers(WABA_ID, TOKEN)
    assert [(n.id, n.display_phone_number, n.quality_rating) for n in numbers] == [
        (PHONE_ID, "15550783881", "UNKNOWN")
    ]
    assert recorder.last.url.path == f"/v23.0/{WABA_ID}/phone_numbers"
    assert recorder.last.url.params["fields"].startswith("id,verified_name")


async def test_templates_follow_paging_next() -> None:
    next_url = f"{BASE}/v23.0/{WABA_ID}/message_templates?limit=1&after=QVFIUk"
    first = {
        "data": [
            {
                "name": "hello_world",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hello World"}],
                "id": "1",
            }
        ],
        "paging": {"cursors": {"before": "A", "after": "QVFIUk"}, "next": next_url},
    }
    second = {
        "data": [
            {
                "name": "order_update",
                "language": "id",
                "status": "PAUSED",
                "category": "MARKETING",
                "components": [],
                "id": "2",
            }
        ],
        "paging": {"cursors": {"before": "B", "after": "C"}},
    }
    recorder = Recorder(ok(first), ok(second))
    async with client_for(recorder) as graph:
        templates = await graph.templates(WABA_ID, TOKEN, limit=1)
    assert [(t.id, t.name, t.language, t.status, t.category) for t in templates] == [
        ("1", "hello_world", "en_US", "APPROVED", "UTILITY"),
        ("2", "order_update", "id", "PAUSED", "MARKETING"),
    ]
    assert templates[0].components == [{"type": "BODY", "text": "Hello World"}]
    first_request, second_request = recorder.requests
    assert first_request.url.path == f"/v23.0/{WABA_ID}/message_templates"
    assert first_request.url.params["limit"] == "1"
    assert "components" in first_request.url.params["fields"]
    assert str(second_request.url) == next_url
    assert_bearer(second_request)


async def test_template_paging_is_bounded() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        return ok(
            {"data": [{"id": "x", "name": "t", "language": "en"}], "paging": {"next": str(request.url)}}
        )

    from layanify.whatsapp import client as client_module

    recorder = Recorder(*[endless] * client_module.MAX_PAGES)
    async with client_for(recorder) as graph:
        templates = await graph.templates(WABA_ID, TOKEN)
    assert len(templates) == client_module.MAX_PAGES
    assert len(recorder.requests) == client_module.MAX_PAGES


async def test_subscribed_apps_and_subscribe() -> None:
    apps = {
        "data": [
            {
                "whatsapp_business_api_data": {
                    "link": "https://www.example.com/",
                    "name": "Layanify",
                    "id": "67084...",
                }
            }
        ]
    }
    recorder = Recorder(ok(apps), ok({"success": True}))
    async with client_for(recorder) as graph:
        assert await graph.subscribed_apps(WABA_ID, TOKEN) == apps["data"]
        assert await graph.subscribe_app(WABA_ID, TOKEN) is True
    listed, subscribed = recorder.requests
    assert (listed.method, str(listed.url)) == ("GET", f"{BASE}/v23.0/{WABA_ID}/subscribed_apps")
    assert (subscribed.method, str(subscribed.url)) == ("POST", f"{BASE}/v23.0/{WABA_ID}/subscribed_apps")
    assert_bearer(subscribed)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, 130429, errors.Throttled),
        (400, 131056, errors.PairRateLimited),
        (500, 131000, errors.ServerError),
        (401, 190, errors.TokenInvalid),
        (403, 10, errors.PermissionDenied),
        (400, 100, errors.InvalidParameter),
        (400, 132000, errors.TemplateParameterMismatch),
        (404, 132001, errors.TemplateUnavailable),
        (400, 131047, errors.WindowClosed),
        (400, 131026, errors.Undeliverable),
        (400, 131030, errors.RecipientNotAllowed),
        (400, 131050, errors.MarketingLimited),
        (403, 368, errors.AccountRestricted),
        (400, 133010, errors.NumberNotRegistered),
        (400, 4242, errors.GraphError),
        (503, 4242, errors.ServerError),
    ],
)
async def test_error_bodies_raise_typed_errors(status: int, code: int, cls: type[errors.GraphError]) -> None:
    recorder = Recorder(meta_error(status, code, f"(#{code}) Title"))
    async with client_for(recorder) as graph:
        with pytest.raises(errors.GraphError) as caught:
            await graph.send_message(PHONE_ID, TOKEN, {})
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert caught.value.http_status == status
    assert caught.value.fbtrace_id == "AbCdEfGh123"


async def test_5xx_html_body_is_a_server_error() -> None:
    recorder = Recorder(httpx.Response(502, html="<html><body><h1>502 Bad Gateway</h1></body></html>"))
    async with client_for(recorder) as graph:
        with pytest.raises(errors.ServerError) as caught:
            await graph.phone_number(PHONE_ID, TOKEN)
    assert caught.value.retryable
    assert "<html>" not in str(caught.value)


@pytest.mark.parametrize(
    ("failure", "maybe_sent"),
    [
        (httpx.ConnectTimeout("connect timed out"), False),
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.ConnectError("connection refused"), False),
        (httpx.RemoteProtocolError("peer closed"), True),
    ],
)
async def test_transport_failures_are_network_errors(failure: Exception, maybe_sent: bool) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    async with client_for(Recorder(fail)) as graph:
        with pytest.raises(errors.NetworkError) as caught:
            await graph.send_message(PHONE_ID, TOKEN, {})
    assert caught.value.retryable
    assert caught.value.action is errors.Action.RETRY_LATER
    # A refused connection surely sent nothing (the outbox retries at once); a lost answer may have.
    assert caught.value.maybe_sent is maybe_sent
    assert caught.value.__cause__ is None  # the httpx chain (with the request's headers) is not kept


async def test_the_token_never_appears_in_an_error() -> None:
    echoed = meta_error(400, 190, f"Malformed access token {TOKEN}", details=f"token {TOKEN} is not valid")
    recorder = Recorder(echoed, meta_error(400, 131047, "(#131047) Re-engagement message"))

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout(f"timed out {request.headers['authorization']}")

    recorder.responses.append(timeout)
    async with client_for(recorder) as graph:
        for _ in range(3):
            with pytest.raises(errors.GraphError) as caught:
                await graph.send_message(PHONE_ID, TOKEN, {})
            error = caught.value
            for text in (
                str(error),
                repr(error),
                error.message,
                error.title,
                error.details or "",
                json.dumps(error.to_dict()),
                *map(str, error.args),
            ):
                assert TOKEN not in text
            assert error.__cause__ is None


async def test_the_client_closes_only_what_it_created() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(Recorder()))
    async with GraphClient(base_url=BASE, version="v23.0", http=http):
        pass
    assert not http.is_closed
    await http.aclose()
    own = GraphClient(base_url=BASE, version="v23.0", timeout=3.0, max_connections=16, pool_shards=4)
    assert len(own._pool) == 4  # four pools of four connections: cheaper per request than one of 16
    assert all(h.timeout == httpx.Timeout(3.0, connect=5.0) for h in own._pool)
    await own.aclose()
    assert all(h.is_closed for h in own._pool)


def test_urls() -> None:
    graph = GraphClient(base_url="http://127.0.0.1:8900/", version="/v23.0", http=httpx.AsyncClient())
    assert graph.url("123/messages") == "http://127.0.0.1:8900/v23.0/123/messages"
    assert graph.url("/123") == "http://127.0.0.1:8900/v23.0/123"
    assert graph.url("https://lookaside.fbsbx.com/x?mid=1") == "https://lookaside.fbsbx.com/x?mid=1"


def test_the_pools_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each context loads the CA bundle: 32 of them made every app start 1.4 s slower.
    made: set[int] = set()
    real = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        context = real(*args, **kwargs)
        made.add(id(context))
        return context

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    client = GraphClient(base_url=BASE, version="v23.0")
    assert len(client._pool) == 32
    assert all(type(h._transport).__name__ == "AiohttpTransport" for h in client._pool)  # aiohttp underneath
    assert len(made) == 1
