"""The async Graph API client: every call goes through one request method (auth, errors, logging).

Shapes follow Meta's Cloud API reference (messages, media, phone numbers, templates, subscribed apps).
The token is passed per call, because each connected number has its own.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.request import getproxies

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from layanify.observability import get_logger
from layanify.whatsapp.errors import MediaTooLarge, NetworkError, ServerError, error_for
from layanify.whatsapp.outbound import build_read_body

JSON = dict[str, Any]
log = get_logger(__name__)

PHONE_NUMBER_FIELDS = (
    "verified_name",
    "display_phone_number",
    "quality_rating",
    "code_verification_status",
    "name_status",
    "platform_type",
    "throughput",
    "status",
)
TEMPLATE_FIELDS = ("name", "language", "status", "category", "components")
MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class SendResult:
    """What Meta answered to a send: the canonical wa_id, what we sent as `to`, and the wamid."""

    wa_id: str | None
    input: str | None
    wamid: str
    message_status: str | None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """`GET /{media_id}`: a short-lived download URL and the file's facts."""

    id: str
    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None


@dataclass(frozen=True, slots=True)
class PhoneNumberInfo:
    """A business phone number as Graph describes it; fields we do not model stay in `raw`."""

    id: str
    display_phone_number: str | None
    verified_name: str | None
    quality_rating: str | None
    code_verification_status: str | None
    name_status: str | None
    platform_type: str | None
    status: str | None
    throughput_level: str | None
    raw: JSON = field(default_factory=dict)

    @classmethod
    def from_graph(cls, data: JSON) -> PhoneNumberInfo:
        """Build from a Graph phone number object."""
        throughput = data.get("throughput")
        return cls(
            id=str(data.get("id", "")),
            display_phone_number=_str(data.get("display_phone_number")),
            verified_name=_str(data.get("verified_name")),
            quality_rating=_str(data.get("quality_rating")),
            code_verification_status=_str(data.get("code_verification_status")),
            name_status=_str(data.get("name_status")),
            platform_type=_str(data.get("platform_type")),
            status=_str(data.get("status")),
            throughput_level=_str(throughput.get("level")) if isinstance(throughput, dict) else None,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """A message template of a WhatsApp Business Account."""

    id: str
    name: str
    language: str
    status: str | None
    category: str | None
    components: list[JSON]
    raw: JSON = field(default_factory=dict)

    @classmethod
    def from_graph(cls, data: JSON) -> TemplateInfo:
        """Build from a Graph message template object."""
        components = data.get("components")
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            language=str(data.get("language", "")),
            status=_str(data.get("status")),
            category=_str(data.get("category")),
            components=[c for c in components if isinstance(c, dict)] if isinstance(components, list) else [],
            raw=data,
        )


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# Failures that happen before a request leaves: nothing reached Meta.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _network_error(message: str, cause: Exception) -> NetworkError:
    """The NetworkError for a transport failure, saying whether the request may have reached Meta.

    Raised `from None` (the httpx exception chain carries the request, token header included, into
    tracebacks and error reports), so the one fact the outbox needs travels as an attribute instead.
    """
    error = NetworkError(message)
    error.maybe_sent = not isinstance(cause, _NOT_SENT)
    return error


@dataclass(frozen=True, slots=True)
class _Shard:
    """One of the client's connection pools: the httpx client, and our transport to call directly."""

    http: httpx.AsyncClient
    # None: through `http.send` (a given client, or proxies configured).
    direct: httpx.AsyncBaseTransport | None
    extensions: dict[str, Any]  # the client's timeouts, as httpx passes them to a transport


class GraphClient:
    """Async client for Meta's Graph API (Cloud API endpoints), with one request choke point.

    It does not retry: the outbox owns retry policy and reads `GraphError.action` / `retryable`.
    Base URL and version are configurable (the local simulator, a proxy, a new API version).
    """

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        max_connections: int = 128,
        pool_shards: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version.strip("/")
        self._owns_http = http is None
        if http is not None:
            self._pool = [http]
            shards = [_Shard(http, None, {"timeout": http.timeout.as_dict()})]
        else:
            # Several small connection pools (docs/decisions.md, 25), each on aiohttp through httpx's
            # transport interface (decision 31: httpx's own httpcore transport cost ~0.5 ms of CPU a
            # request, most of the outbox's cost per message). Requests call the transport directly,
            # unless proxies are configured in the environment: then they go through `http.send`,
            # which routes them to the proxies as httpx always did.
            count = max(1, min(pool_shards, max_connections))
            per_shard = max(1, max_connections // count)
            # One TLS context for all of them: building one loads the CA bundle (~40 ms each).
            tls = httpx.create_ssl_context()
            timeouts = httpx.Timeout(timeout, connect=5.0)
            direct = not getproxies()
            # Idle connections are dropped after 4 s: under the 5 s many servers keep them, so a request
            # rarely meets a connection the other side is closing.
            limits = httpx.Limits(
                max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=4.0
            )
            transports = [AiohttpTransport(verify=tls, limits=limits) for _ in range(count)]
            self._pool = [httpx.AsyncClient(transport=t, verify=tls, timeout=timeouts) for t in transports]
            shards = [
                _Shard(h, t if direct else None, {"timeout": timeouts.as_dict()})
                for h, t in zip(self._pool, transports, strict=True)
            ]
        self._next_shard = itertools.cycle(shards)
        # The client's default headers (Accept, Accept-Encoding, User-Agent …) plus the bearer token, and
        # URLs of Graph paths, built once instead of for every request (bounded: tokens and paths of
        # numbers, a few each; media paths come and go).
        self._default_headers = list(self._pool[0].headers.raw)
        self._headers: dict[tuple[str, bytes, bool], httpx.Headers] = {}
        self._urls: dict[str, httpx.URL] = {}

    async def aclose(self) -> None:
        """Close the HTTP clients if this object created them."""
        if self._owns_http:
            for http in self._pool:
                await http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def url(self, path: str) -> str:
        """The absolute URL of a Graph path (an absolute URL is kept as it is)."""
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.base_url}/{self.version}/{path.lstrip('/')}"

    def _url(self, path: str, params: dict[str, Any] | None) -> httpx.URL:
        if params is not None:
            return httpx.URL(self.url(path), params=params)
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.url(path))
            if not path.startswith(("https://", "http://")):
                if len(self._urls) >= 4096:
                    self._urls.clear()
                self._urls[path] = url
        return url

    def _headers_for(self, token: str, host: bytes, json: bool) -> httpx.Headers:
        key = (token, host, json)
        headers = self._headers.get(key)
        if headers is None:
            raw = [(b"Host", host), *self._default_headers, (b"Authorization", f"Bearer {token}".encode())]
            if json:
                raw.append((b"Content-Type", b"application/json"))
            headers = httpx.Headers(raw)
            if len(self._headers) >= 1024:
                self._headers.clear()
            self._headers[key] = headers
        return headers

    def _build(
        self,
        shard: _Shard,
        method: str,
        path: str,
        token: str,
        *,
        json: JSON | None,
        params: dict[str, Any] | None,
        files: dict[str, Any] | None,
        data: dict[str, Any] | None,
    ) -> httpx.Request:
        """The request: orjson bytes for a JSON body; multipart forms are encoded by httpx."""
        url = self._url(path, params)
        if files is not None or data is not None:
            auth = {"Authorization": f"Bearer {token}"}
            return shard.http.build_request(method, url, headers=auth, files=files, data=data)
        content = b"" if json is None else orjson.dumps(json)
        headers = httpx.Headers(self._headers_for(token, url.netloc, json is not None))
        if content or method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(content))
        return httpx.Request(
            method, url, headers=headers, stream=httpx.ByteStream(content), extensions=shard.extensions
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        token: str,
        json: JSON | None = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request: bearer auth, transport errors → NetworkError, non-2xx → typed GraphError.

        With `stream=True` the response body is not read; the caller must close the response.
        """
        shard = next(self._next_shard)
        request = self._build(shard, method, path, token, json=json, params=params, files=files, data=data)
        started = time.perf_counter()
        try:
            if shard.direct is None:
                response = await shard.http.send(request, stream=stream)
            else:
                response = await shard.direct.handle_async_request(request)
                response.request = request
                if not stream:
                    try:
                        await response.aread()
                    except BaseException:
                        await response.aclose()
                        raise
        except httpx.TimeoutException as exc:
            log.warning("graph.timeout", method=method, path=request.url.path)
            raise _network_error(f"Timed out: {type(exc).__name__}", exc) from None
        except httpx.TransportError as exc:
            log.warning("graph.transport_error", method=method, path=request.url.path)
            raise _network_error(f"Transport error: {type(exc).__name__}", exc) from None
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if response.is_success:
            log.debug(
                "graph.request",
                method=method,
                path=request.url.path,
                status=response.status_code,
                duration_ms=duration_ms,
            )
            return response
        try:
            body = await response.aread() if stream else response.content
        except httpx.HTTPError:
            body = b""
        finally:
            if stream:
                await response.aclose()
        error = error_for(response.status_code, body)
        error.redact(token)
        log.info(
            "graph.error",
            method=method,
            path=request.url.path,
            status=response.status_code,
            duration_ms=duration_ms,
            code=error.code,
            fbtrace_id=error.fbtrace_id,
        )
        raise error

    async def _json(self, method: str, path: str, *, token: str, **kwargs: Any) -> JSON:
        response = await self._request(method, path, token=token, **kwargs)
        try:
            decoded = orjson.loads(response.content)
        except ValueError:
            raise ServerError("Malformed response: not JSON", http_status=response.status_code) from None
        if not isinstance(decoded, dict):
            raise ServerError("Malformed response: not a JSON object", http_status=response.status_code)
        return decoded

    # --- messages --------------------------------------------------------------------------------

    async def send_message(self, phone_number_id: str, token: str, body: JSON) -> SendResult:
        """`POST /{phone_number_id}/messages` with a body from `outbound.build_message_body`."""
        data = await self._json("POST", f"{phone_number_id}/messages", token=token, json=body)
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, dict) else None
        if not isinstance(wamid, str) or not wamid:
            raise ServerError("Malformed response: no message id", http_status=200)
        contacts = data.get("contacts")
        contact = (
            contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
        )
        return SendResult(
            wa_id=_str(contact.get("wa_id")),
            input=_str(contact.get("input")),
            wamid=wamid,
            message_status=_str(first.get("message_status")) if isinstance(first, dict) else None,
        )

    async def mark_read(self, phone_number_id: str, token: str, wamid: str, *, typing: bool = False) -> bool:
        """Mark a received message (and the ones before it) read; optionally show typing."""
        data = await self._json(
            "POST", f"{phone_number_id}/messages", token=token, json=build_read_body(wamid, typing=typing)
        )
        return data.get("success") is True

    # --- media -----------------------------------------------------------------------------------

    async def upload_media(
        self, phone_number_id: str, token: str, *, content: bytes, mime_type: str, filename: str
    ) -> str:
        """`POST /{phone_number_id}/media` (multipart) → the media id."""
        data = await self._json(
            "POST",
            f"{phone_number_id}/media",
            token=token,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        media_id = _str(data.get("id"))
        if not media_id:
            raise ServerError("Malformed response: no media id", http_status=200)
        return media_id

    async def media_info(self, media_id: str, token: str) -> MediaInfo:
        """`GET /{media_id}`: the download URL (valid for minutes), mime type, sha256 and size."""
        data = await self._json("GET", media_id, token=token)
        url = _str(data.get("url"))
        if not url:
            raise ServerError("Malformed response: no media url", http_status=200)
        size = data.get("file_size")
        return MediaInfo(
            id=_str(data.get("id")) or media_id,
            url=url,
            mime_type=_str(data.get("mime_type")),
            sha256=_str(data.get("sha256")),
            file_size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        )

    async def download_media(self, url: str, token: str, *, max_bytes: int) -> bytes:
        """Download a media URL from `media_info` (needs the bearer token); refuses more than max_bytes."""
        response = await self._request("GET", url, token=token, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise MediaTooLarge(f"Media is {declared} bytes, more than {max_bytes}")
            chunks: list[bytes] = []
            received = 0
            try:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise MediaTooLarge(f"Media is more than {max_bytes} bytes")
                    chunks.append(chunk)
            except httpx.TimeoutException:
                raise NetworkError("Timed out while downloading media") from None
            except httpx.TransportError as exc:
                raise NetworkError(f"Transport error while downloading media: {type(exc).__name__}") from None
            return b"".join(chunks)
        finally:
            await response.aclose()

    async def delete_media(self, media_id: str, token: str) -> bool:
        """`DELETE /{media_id}`."""
        data = await self._json("DELETE", media_id, token=token)
        return data.get("success") is True

    # --- numbers, templates, apps ----------------------------------------------------------------

    async def phone_number(self, phone_number_id: str, token: str) -> PhoneNumberInfo:
        """`GET /{phone_number_id}` with the fields the number's health page shows."""
        data = await self._json(
            "GET", phone_number_id, token=token, params={"fields": ",".join(PHONE_NUMBER_FIELDS)}
        )
        if "id" not in data:
            data = {**data, "id": phone_number_id}
        return PhoneNumberInfo.from_graph(data)

    async def _pages(self, path: str, token: str, params: dict[str, Any]) -> list[JSON]:
        """Every item of a Graph list, following `paging.next` (at most MAX_PAGES pages)."""
        items: list[JSON] = []
        next_url: str | None = path
        next_params: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            data = await self._json("GET", next_url, token=token, params=next_params)
            page = data.get("data")
            if isinstance(page, list):
                items.extend(item for item in page if isinstance(item, dict))
            paging = data.get("paging")
            following = paging.get("next") if isinstance(paging, dict) else None
            next_url = following if isinstance(following, str) and following else None
            next_params = None  # the next URL carries its own query (cursor, limit, fields)
        return items

    async def waba_phone_numbers(self, waba_id: str, token: str) -> list[PhoneNumberInfo]:
        """`GET /{waba_id}/phone_numbers`: every number of a WhatsApp Business Account."""
        fields = ",".join(("id", *PHONE_NUMBER_FIELDS))
        items = await self._pages(f"{waba_id}/phone_numbers", token, {"fields": fields})
        return [PhoneNumberInfo.from_graph(item) for item in items]

    async def templates(self, waba_id: str, token: str, *, limit: int = 100) -> list[TemplateInfo]:
        """`GET /{waba_id}/message_templates`, every page."""
        params = {"fields": ",".join(TEMPLATE_FIELDS), "limit": limit}
        items = await self._pages(f"{waba_id}/message_templates", token, params)
        return [TemplateInfo.from_graph(item) for item in items]

    async def subscribed_apps(self, waba_id: str, token: str) -> list[JSON]:
        """`GET /{waba_id}/subscribed_apps`: the apps receiving this account's webhooks."""
        data = await self._json("GET", f"{waba_id}/subscribed_apps", token=token)
        apps = data.get("data")
        return [app for app in apps if isinstance(app, dict)] if isinstance(apps, list) else []

    async def subscribe_app(self, waba_id: str, token: str) -> bool:
        """`POST /{waba_id}/subscribed_apps`: send this account's webhooks to our app."""
        data = await self._json("POST", f"{waba_id}/subscribed_apps", token=token)
        return data.get("success") is True
