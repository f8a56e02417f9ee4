"""`GET /api/v1/events`: the caller's workspace's real-time events as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from layanify.accounts.dependencies import get_principal
from layanify.accounts.service import Principal
from layanify.db.session import unit_of_work
from layanify.errors import LayanifyError
from layanify.realtime.broker import Broker
from layanify.realtime.events import parse_id

router = APIRouter(prefix="/api/v1", tags=["events"])

KEEPALIVE_SECONDS = 15  # a comment line this often keeps proxies from closing an idle stream
RECONNECT_MILLISECONDS = 3000  # the browser's wait before it reconnects (it sends Last-Event-ID then)
SEND_TIMEOUT_SECONDS = 30.0  # a client that takes no bytes for this long is dropped
READY = "ready"


async def stream_principal(request: Request) -> Principal:
    """The caller (API key or session cookie, exactly as every API route), checked in a unit of work of
    its own: a stream stays open for hours and must not hold a database connection meanwhile."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        return await get_principal(request, session)


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]


async def _sse(broker: Broker, workspace_id: int, position: str) -> AsyncIterator[ServerSentEvent]:
    """`ready` (carrying the position, so even a drop before the first event resumes there), then the
    workspace's events after that position. Ends when the client goes or the broker closes."""
    subscription = broker.subscribe(workspace_id, last_event_id=position)
    # An id that is not one of ours is not echoed back: the broker answers it with `resync` and a real id.
    ready_id = position if parse_id(position) is not None else None
    try:
        yield ServerSentEvent(data="{}", event=READY, id=ready_id, retry=RECONNECT_MILLISECONDS)
        async for event in subscription:
            yield ServerSentEvent(data=orjson.dumps(event.data).decode(), event=event.type, id=event.id)
    finally:
        await subscription.aclose()


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "An endless `text/event-stream` of the workspace's events (ids only in `data`).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_events(
    request: Request,
    principal: StreamPrincipal,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query(max_length=64)] = None,
) -> EventSourceResponse:
    """Live events of the caller's workspace: `message.created`, `message.updated`,
    `conversation.updated`, and `resync` (reload your lists: events were missed).

    The first event is `ready`, whose id is the stream's position. Reconnect with the `Last-Event-ID`
    header (browsers send it themselves) or `?last_event_id=` to get the events missed in between.
    """
    broker: Broker | None = getattr(request.app.state, "broker", None)
    if broker is None:
        raise LayanifyError("live events are not available right now", status_code=503, code="unavailable")
    resume_from = (last_event_id_header or last_event_id or "").strip()[:64] or None
    position = resume_from or await broker.latest_id(principal.workspace_id)
    return EventSourceResponse(
        _sse(broker, principal.workspace_id, position),
        ping=KEEPALIVE_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )
