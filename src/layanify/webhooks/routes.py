"""Meta's webhook (the seed's GET/POST /api/webhooks/whatsapp) and the webhook log API."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from layanify.accounts.dependencies import OwnerPrincipal, SessionDep
from layanify.config import Settings
from layanify.db.session import after_commit
from layanify.errors import error_body
from layanify.observability import get_logger
from layanify.pagination import MAX_LIMIT, ObjectId, Page, decode_cursor, encode_cursor
from layanify.proxies import client_ip, is_allowed
from layanify.webhooks import service
from layanify.webhooks.ingest import EventWriter, IngestUnavailable
from layanify.webhooks.models import EventStatus, WebhookEvent
from layanify.webhooks.schemas import WebhookEventDetail, WebhookEventRead
from layanify.whatsapp.signature import challenge_response, signature_is_valid

WEBHOOK_PATH = "/api/webhooks/whatsapp"
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")  # as web/security.py
router = APIRouter(tags=["webhooks"])
log = get_logger(__name__)


@router.get(WEBHOOK_PATH, response_class=PlainTextResponse)
async def verify_webhook(
    request: Request,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> PlainTextResponse:
    """Meta's subscription handshake: echo hub.challenge when hub.verify_token matches, else 403."""
    settings: Settings = request.app.state.settings
    expected = settings.whatsapp_verify_token.get_secret_value() if settings.whatsapp_verify_token else None
    answer = challenge_response(mode, verify_token, challenge, expected)
    if answer is None:
        log.warning("webhook_verification_refused", mode=mode, configured=expected is not None)
        return PlainTextResponse("verification failed", status_code=403)
    log.info("webhook_verified")
    return PlainTextResponse(answer)


class _Rejected(Exception):
    """A webhook POST refused with a status, a code and a message."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Rejected(400, "client_disconnected", "the client went away before sending the body")
        chunks += message.get("body", b"")
        if len(chunks) > limit:
            raise _Rejected(413, "payload_too_large", f"webhook bodies are limited to {limit} bytes")
        if not message.get("more_body", False):
            return bytes(chunks)


async def _store_webhook(state: State, scope: Scope, receive: Receive) -> None:
    """Verify the POST, check Meta's envelope and store the raw bytes durably; raise _Rejected otherwise."""
    settings: Settings = state.settings
    if settings.webhook_allowed_ips:  # before a byte of the body is read, and nothing of it is logged
        address = client_ip(scope, settings.trusted_proxies)
        if not is_allowed(address, settings.webhook_allowed_ips):
            raise _Rejected(403, "ip_not_allowed", "this address may not deliver webhooks", ip=address)
    headers = dict(scope["headers"])
    limit = settings.webhook_max_body_bytes
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise _Rejected(
            413, "payload_too_large", f"webhook bodies are limited to {limit} bytes", size=int(declared)
        )
    body = await _read_body(receive, limit)
    secret = settings.whatsapp_app_secret.get_secret_value() if settings.whatsapp_app_secret else ""
    if not secret:
        raise _Rejected(
            401, "app_secret_not_configured", "WHATSAPP_APP_SECRET is not set: signatures cannot be verified"
        )
    signature = headers.get(b"x-hub-signature-256")
    if not signature_is_valid(secret, body, signature.decode("latin-1") if signature else None):
        raise _Rejected(401, "invalid_signature", "X-Hub-Signature-256 is missing or does not match the body")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Rejected(400, "malformed_json", "the body is not valid JSON", size=len(body)) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise _Rejected(400, "not_a_webhook", "expected Meta's envelope: an object with an 'entry' list")
    writer: EventWriter = state.event_writer
    try:
        await writer.store(body)
    except IngestUnavailable as exc:
        log.error("webhook_not_stored", reason=str(exc), size=len(body))
        raise _Rejected(503, "unavailable", "the event could not be stored; retry") from None


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, *, hsts: bool) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if hsts:
        headers.append(HSTS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def receive_webhook(state: State, scope: Scope, receive: Receive, send: Send) -> None:
    """Meta's event delivery (`POST /api/webhooks/whatsapp`), answered as plain ASGI before any routing.

    It is the hot path: no middleware, dependency injection or request objects. Answers 200 only once
    the raw body is committed; 403 from an address outside LAYANIFY_WEBHOOK_ALLOWED_IPS (when set),
    401 bad or missing signature, 400 not Meta's JSON envelope, 413 over the limit, 503 when it could
    not be stored (Meta retries). In production every answer carries HSTS, like the rest of the app.
    """
    hsts = state.settings.env == "production"
    try:
        await _store_webhook(state, scope, receive)
    except _Rejected as rejected:
        if rejected.status != 503:
            client = scope.get("client")
            log.warning(
                "webhook_rejected",
                status=rejected.status,
                reason=rejected.code,
                client=client[0] if client else None,
                **rejected.fields,
            )
        body = orjson.dumps(error_body(rejected.code, rejected.message))
        await _respond(send, rejected.status, body, b"application/json", hsts=hsts)
        return
    except Exception:
        log.exception("webhook_receiver_failed")
        await _respond(
            send,
            500,
            orjson.dumps(error_body("internal", "unexpected error")),
            b"application/json",
            hsts=hsts,
        )
        return
    await _respond(send, 200, b"EVENT_RECEIVED", b"text/plain; charset=utf-8", hsts=hsts)


def _to_read(event: WebhookEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "received_at": event.received_at,
        "status": event.status,
        "attempts": event.attempts,
        "next_attempt_at": event.next_attempt_at if event.status == EventStatus.PENDING else None,
        "processed_at": event.processed_at,
        "fields": [f for f in (event.fields or "").split(",") if f],
        "last_error": event.last_error,
        "summary": event.summary,
        "size_bytes": len(event.body),
    }


def payload_of(event: WebhookEvent) -> Any:
    """The event body as JSON (or as text if it is not JSON)."""
    try:
        return orjson.loads(event.body)
    except orjson.JSONDecodeError:
        return event.body.decode("utf-8", "replace")


api = APIRouter(prefix="/api/v1/webhooks/events", tags=["webhooks"])


@api.get("")
async def list_events(
    principal: OwnerPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
    status: EventStatus | None = None,
) -> Page[WebhookEventRead]:
    """The workspace's webhook events, newest first (owners only)."""
    before_id = decode_cursor(cursor, (int,))[0] if cursor else None
    events = await service.list_events(
        session,
        workspace_id=principal.workspace_id,
        limit=limit + 1,
        before_id=before_id,
        status=status.value if status else None,
    )
    items = [WebhookEventRead.model_validate(_to_read(e)) for e in events[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(events) > limit else None
    return Page[WebhookEventRead](data=items, next_cursor=next_cursor)


@api.get("/{event_id}")
async def show_event(
    event_id: ObjectId, principal: OwnerPrincipal, session: SessionDep
) -> WebhookEventDetail:
    """One event with its payload as received (withheld when it also carries other workspaces' data)."""
    event = await service.get_event(session, event_id, workspace_id=principal.workspace_id)
    concerns = set((event.summary or {}).get("workspace_ids") or [principal.workspace_id])
    withheld = concerns != {principal.workspace_id}
    return WebhookEventDetail.model_validate(
        {**_to_read(event), "payload": None if withheld else payload_of(event), "payload_withheld": withheld}
    )


@api.post("/{event_id}/replay", status_code=202)
async def replay_event(
    event_id: ObjectId, request: Request, principal: OwnerPrincipal, session: SessionDep
) -> WebhookEventRead:
    """Process the event again (idempotent: stored messages and statuses are not duplicated)."""
    event = await service.replay_event(session, event_id, workspace_id=principal.workspace_id)

    async def wake() -> None:
        request.app.state.wake_workers()

    after_commit(session, wake)
    return WebhookEventRead.model_validate(_to_read(event))
