"""The Graph API routes the Cloud API client uses, answering with Meta's shapes and error codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from layanify.simulator import faults
from layanify.simulator.errors import (
    GraphError,
    invalid_parameter,
    invalid_token,
    pair_rate_limited,
    rate_limited,
    template_missing,
    unknown_object,
    unknown_path,
)
from layanify.simulator.graph_nodes import media_info, number_fields, subscribed_apps, template_page
from layanify.simulator.media import Media
from layanify.simulator.state import Number
from layanify.simulator.validation import check_template, parse_send

if TYPE_CHECKING:
    from layanify.simulator.app import Simulator

BODY_KEY = "simulator.body"  # where a handler leaves the parsed body for the request log


class GraphVersion(Convertor[str]):
    """A Graph API version path segment: v<major>.<minor>."""

    regex = r"v\d+\.\d+"

    def convert(self, value: str) -> str:
        """As is."""
        return value

    def to_string(self, value: str) -> str:
        """As is."""
        return value


register_url_convertor("graph_version", GraphVersion())
Handler = Callable[["Simulator", Request], Awaitable[tuple[int, Any]]]
_JSON = "application/json"


def bearer(request: Request) -> str | None:
    """The access token of a request: `Authorization: Bearer …` or the `access_token` query parameter."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return request.query_params.get("access_token")


def authorize(sim: Simulator, request: Request, allowed: Callable[[Number], bool]) -> Number:
    """The number whose token the request carries, if `allowed` accepts it; 190 otherwise."""
    token = bearer(request)
    if token is None:
        raise invalid_token()
    if token in sim.world.revoked:
        raise invalid_token(revoked=True)
    pnid = sim.world.tokens.get(token)
    number = sim.world.numbers.get(pnid) if pnid is not None else None
    if number is None or not allowed(number):
        raise invalid_token()
    return number


def _known_token(sim: Simulator, request: Request) -> None:
    token = bearer(request)
    if token is None or token not in sim.world.tokens:
        raise invalid_token(revoked=token in sim.world.revoked if token else False)


def _number(sim: Simulator, request: Request) -> Number:
    node = request.path_params["node"]
    number = sim.world.numbers.get(node)
    if number is None:
        _known_token(sim, request)
        raise unknown_object(node)
    authorize(sim, request, lambda n: n.phone_number_id == node)
    return number


def _waba(sim: Simulator, request: Request) -> str:
    waba_id: str = request.path_params["node"]
    if waba_id not in sim.world.subscribed:
        _known_token(sim, request)
        raise unknown_object(waba_id)
    authorize(sim, request, lambda n: n.waba_id == waba_id)
    return waba_id


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise invalid_parameter("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    return body


async def send_message(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`POST /{phone_number_id}/messages`: a send of any type, or mark-as-read (+ typing indicator)."""
    number = _number(sim, request)
    body = await _json(request)
    request.scope[BODY_KEY] = body
    if body.get("status") == "read":
        return 200, _mark_read(sim, number, body)
    send = parse_send(body, sim.world.media.__contains__)
    category = "service"
    if send.is_template:
        name = send.content["name"]
        language = send.content["language"]["code"]
        template = sim.world.find_template(number.waba_id, name, language)
        if template is None or template.status != "APPROVED":
            raise template_missing(name, language)
        check_template(send.content, template)
        category = template.category.lower()
    if faults.take_throttle(sim.config) or not sim.limits.number_allows(number.phone_number_id):
        raise rate_limited()
    if not sim.limits.pair_allows(number.phone_number_id, send.wa_id):
        raise pair_rate_limited()
    message = sim.messaging.accept(number, send, body, category)
    accepted: dict[str, Any] = {"id": message.wamid}
    if send.is_template:
        accepted["message_status"] = "accepted"
    return 200, {
        "messaging_product": "whatsapp",
        "contacts": [{"input": send.to, "wa_id": send.wa_id}],
        "messages": [accepted],
    }


def _mark_read(sim: Simulator, number: Number, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required.")
    wamid = body.get("message_id")
    if not isinstance(wamid, str):
        raise invalid_parameter("The parameter message_id is required.")
    typing = body.get("typing_indicator")
    if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
        raise invalid_parameter("Param typing_indicator['type'] must be 'text'.")
    if not sim.messaging.mark_read(number, wamid, typing is not None):
        raise invalid_parameter(f"Param message_id ({wamid}) is not a message received by this number.")
    return {"success": True}


async def upload_media(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`POST /{phone_number_id}/media` (multipart: messaging_product, type, file) -> `{"id"}`."""
    number = _number(sim, request)
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    upload = form.get("file")
    request.scope[BODY_KEY] = {**fields, "file": getattr(upload, "filename", None)}
    if fields.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required.")
    if not isinstance(upload, UploadFile):
        raise invalid_parameter("The parameter file is required.")
    content = await upload.read()
    if not content:
        raise invalid_parameter("Param file must not be empty.")
    mime_type = fields.get("type") or upload.content_type or "application/octet-stream"
    media = Media(sim.ids.media_id(), number.phone_number_id, mime_type, content, upload.filename)
    sim.world.media[media.id] = media
    return 200, {"id": media.id}


async def get_node(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`GET /{id}`: a phone number (with `fields`) or a media object (its URL and metadata)."""
    node = request.path_params["node"]
    if node in sim.world.numbers:
        number = _number(sim, request)
        return 200, number_fields(number, request.query_params.get("fields"))
    media = sim.world.media.get(node)
    if media is None:
        _known_token(sim, request)
        raise unknown_object(node)
    authorize(sim, request, lambda n: n.phone_number_id == media.phone_number_id)
    return 200, media_info(media, str(request.base_url))


async def delete_node(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`DELETE /{media_id}` -> `{"success": true}`."""
    node = request.path_params["node"]
    media = sim.world.media.get(node)
    if media is None:
        _known_token(sim, request)
        raise unknown_object(node)
    authorize(sim, request, lambda n: n.phone_number_id == media.phone_number_id)
    del sim.world.media[node]
    return 200, {"success": True}


async def phone_numbers(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`GET /{waba_id}/phone_numbers`."""
    waba_id = _waba(sim, request)
    fields = request.query_params.get("fields")
    data = [number_fields(n, fields) for n in sim.world.waba_numbers(waba_id)]
    return 200, {"data": data, "paging": {"cursors": {"before": "QVFIUjAZD", "after": "QVFIUjAZD"}}}


async def message_templates(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`GET /{waba_id}/message_templates` with `limit`/`after`/`name`/`status` paging and filters."""
    waba_id = _waba(sim, request)
    return 200, template_page(sim.world.templates.get(waba_id, []), request)


async def subscriptions(sim: Simulator, request: Request) -> tuple[int, Any]:
    """`GET|POST|DELETE /{waba_id}/subscribed_apps`."""
    waba_id = _waba(sim, request)
    if request.method == "GET":
        return 200, subscribed_apps(sim.world.subscribed[waba_id])
    sim.world.subscribed[waba_id] = request.method == "POST"
    return 200, {"success": True}


async def download_media(sim: Simulator, request: Request) -> Response:
    """The media URL: the bytes, only with the owning number's bearer token (401 otherwise)."""
    media = sim.world.media.get(request.path_params["media_id"])
    if media is None:
        return Response(status_code=404)
    try:
        authorize(sim, request, lambda n: n.phone_number_id == media.phone_number_id)
    except GraphError as error:
        return Response(orjson.dumps(error.body()), status_code=401, media_type=_JSON)
    return Response(media.content, media_type=media.mime_type)


def _endpoint(sim: Simulator, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.time()
        status: int
        payload: Any
        if (fault := await faults.before_request(sim.config, sim.rng)) is not None:
            status, payload = fault.status, fault.body()
        else:
            try:
                status, payload = await handler(sim, request)
            except GraphError as error:
                status, payload = error.status, error.body()
        sim.record(request, status, payload, started)
        content = orjson.dumps(payload)
        if faults.draws_timeout(sim.config, sim.rng):
            await asyncio.sleep(sim.config.timeout_seconds)  # handled, but the answer comes too late
        return Response(content, status_code=status, media_type=_JSON)

    return endpoint


def graph_routes(sim: Simulator) -> list[BaseRoute]:
    """The Graph routes, under any `/v<major>.<minor>` prefix."""

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route("/{version:graph_version}" + path, _endpoint(sim, handler), methods=methods)

    return [
        route("/{node}/messages", send_message, ["POST"]),
        route("/{node}/media", upload_media, ["POST"]),
        route("/{node}/phone_numbers", phone_numbers, ["GET"]),
        route("/{node}/message_templates", message_templates, ["GET"]),
        route("/{node}/subscribed_apps", subscriptions, ["GET", "POST", "DELETE"]),
        route("/{node}", get_node, ["GET"]),
        route("/{node}", delete_node, ["DELETE"]),
    ]


async def _unknown_path(sim: Simulator, request: Request) -> tuple[int, Any]:
    raise unknown_path(request.url.path.lstrip("/"))


def unknown_path_route(sim: Simulator) -> Route:
    """The last route: any other path answers Graph's 2500 "Unknown path components"."""
    return Route("/{path:path}", _endpoint(sim, _unknown_path), methods=["GET", "POST", "DELETE", "PUT"])
