"""The real-time broker: publishes a workspace's events and fans them out to its subscribers.

Two implementations of one interface (see docs/architecture.md): `MemoryBroker` for the embedded
default (one process), `RedisBroker` (Redis Streams) when `LAYANIFY_REDIS_URL` is set, so events
published by `layanify worker` processes reach the browsers connected to any `layanify serve`.

Both keep the last `BUFFER_SIZE` events of each workspace. A subscriber that names the last event it
saw gets every buffered event after it first (a browser that reconnects loses nothing still buffered);
when that id fell out of the buffer, or is unknown, it gets a `resync` event instead, so the page
reloads its lists rather than silently missing events.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from layanify.config import Settings
from layanify.realtime.events import BUFFER_SIZE, Event, Publication, parse_id, resync
from layanify.realtime.redis_streams import RedisBroker

__all__ = ["Broker", "Event", "MemoryBroker", "Publication", "RedisBroker", "broker_for"]


class Broker(Protocol):
    """Publishes events per workspace and streams them to subscribers of that workspace only."""

    async def publish(self, workspace_id: int, type: str, data: dict[str, Any]) -> str:
        """Publish one event; returns its id."""
        ...

    async def publish_many(self, publications: Sequence[Publication]) -> list[str]:
        """Publish several events in order (one round trip on Redis); returns their ids."""
        ...

    async def latest_id(self, workspace_id: int) -> str:
        """The id a new subscriber resumes from to get every event published from now on."""
        ...

    def subscribe(
        self, workspace_id: int, *, last_event_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """The workspace's events after `last_event_id` (buffered ones first, then live ones), or only
        live ones when it is None. Ends when the broker closes; close the generator to unsubscribe."""
        ...

    async def aclose(self) -> None:
        """End every subscription and release connections. Idempotent."""
        ...


@dataclass(slots=True)
class _Stream:
    """One workspace's buffer: events numbered 1, 2, 3 … and an asyncio.Event set at each publish."""

    events: deque[tuple[int, Event]]
    seq: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def first_seq(self) -> int:
        """The number of the oldest buffered event (seq + 1 when none is)."""
        return self.events[0][0] if self.events else self.seq + 1


class MemoryBroker:
    """Events fanned out inside this process, the last `buffer_size` of each workspace kept for replay.

    Publishing appends to the workspace's buffer and wakes its subscribers; each subscriber reads the
    buffer at its own pace, so a slow one never holds up a publisher (it gets `resync` if it falls more
    than the buffer behind). Ids are `<start time in ms>-<n>`: increasing per workspace, and an id from
    before a restart is recognised as such (its events are gone: `resync`).
    """

    def __init__(self, buffer_size: int = BUFFER_SIZE) -> None:
        self._buffer_size = buffer_size
        self._epoch = time.time_ns() // 1_000_000
        self._streams: dict[int, _Stream] = {}
        self._closed = False

    def _stream(self, workspace_id: int) -> _Stream:
        stream = self._streams.get(workspace_id)
        if stream is None:
            stream = self._streams[workspace_id] = _Stream(deque(maxlen=self._buffer_size))
        return stream

    def _id(self, seq: int) -> str:
        return f"{self._epoch}-{seq}"

    async def publish(self, workspace_id: int, type: str, data: dict[str, Any]) -> str:
        """Publish one event; returns its id."""
        return self._append(Publication(workspace_id, type, data))

    async def publish_many(self, publications: Sequence[Publication]) -> list[str]:
        """Publish several events in order; returns their ids."""
        return [self._append(p) for p in publications]

    def _append(self, publication: Publication) -> str:
        stream = self._stream(publication.workspace_id)
        stream.seq += 1
        event_id = self._id(stream.seq)
        stream.events.append(
            (stream.seq, Event(event_id, publication.workspace_id, publication.type, dict(publication.data)))
        )
        woken, stream.changed = stream.changed, asyncio.Event()
        woken.set()
        return event_id

    async def latest_id(self, workspace_id: int) -> str:
        """The id of the workspace's newest event (`<epoch>-0` before the first one)."""
        return self._id(self._stream(workspace_id).seq)

    async def subscribe(
        self, workspace_id: int, *, last_event_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """The workspace's events after `last_event_id`, then live ones, until the broker closes."""
        stream = self._stream(workspace_id)
        cursor = stream.seq
        if last_event_id is not None:
            position = parse_id(last_event_id)
            if position is None or position[0] != self._epoch or position[1] > stream.seq:
                yield resync(workspace_id, self._id(stream.seq), "unknown_id")
            else:
                cursor = position[1]
        while not self._closed:
            woken = stream.changed
            first = stream.first_seq()
            if cursor < stream.seq and cursor + 1 < first:
                cursor = stream.seq  # events after the cursor were pushed out of the buffer
                yield resync(workspace_id, self._id(cursor), "events_dropped")
                continue
            if cursor < stream.seq:
                # A snapshot: publishers may append (and evict) while this subscriber is suspended.
                for seq, event in list(islice(stream.events, cursor + 1 - first, None)):
                    cursor = seq
                    yield event
                continue
            await woken.wait()

    async def aclose(self) -> None:
        """End every subscription (their generators return)."""
        self._closed = True
        for stream in self._streams.values():
            stream.changed.set()


def broker_for(settings: Settings) -> Broker:
    """Redis Streams when `LAYANIFY_REDIS_URL` is set (events cross processes), else in-process."""
    if settings.redis_url:
        return RedisBroker(settings.redis_url)
    return MemoryBroker()
