"""The Redis broker: one Redis Stream per workspace, so events cross processes (scale-out).

`XADD layanify:events:{workspace_id} MAXLEN ~ 1000` publishes; each subscriber `XREAD BLOCK`s from the
last id it delivered, so a slow subscriber reads at its own pace and never holds up a publisher. Event
ids are the stream ids. Trimming is approximate (whole stream nodes), so about the last 1,000 events
are kept — never fewer. Streams of idle workspaces expire after a day.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import orjson
import redis.asyncio as redis_async
from redis.exceptions import ResponseError

from layanify.realtime.events import BUFFER_SIZE, Event, Publication, format_id, parse_id, resync

KEY_PREFIX = "layanify:events:"
STREAM_TTL_SECONDS = 24 * 3600
READ_COUNT = 100  # at most: see `_read_count`
BLOCK_MILLISECONDS = 5000
_START = "0-0"


def stream_key(workspace_id: int) -> str:
    """The Redis key of a workspace's stream."""
    return f"{KEY_PREFIX}{workspace_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBroker:
    """Events in Redis Streams, shared by every process pointed at the same Redis."""

    def __init__(self, url: str, *, buffer_size: int = BUFFER_SIZE) -> None:
        self._redis = redis_async.from_url(url)
        self._buffer_size = buffer_size
        # Trimming never leaves fewer than `buffer_size` entries, so when entries after a subscriber's
        # cursor were trimmed, every entry left is after it: its next read is full. Only a full read
        # needs the (extra round trip) check for lost events, as long as a read is no bigger than that.
        self._read_count = min(READ_COUNT, buffer_size)
        self._closed = asyncio.Event()

    async def publish(self, workspace_id: int, type: str, data: dict[str, Any]) -> str:
        """Publish one event; returns its stream id."""
        return (await self.publish_many([Publication(workspace_id, type, data)]))[0]

    async def publish_many(self, publications: Sequence[Publication]) -> list[str]:
        """Publish several events in order, in one round trip; returns their stream ids."""
        if not publications:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in publications:
                pipe.xadd(
                    stream_key(p.workspace_id),
                    {"type": p.type, "data": orjson.dumps(p.data)},
                    maxlen=self._buffer_size,
                    approximate=True,
                )
            for workspace_id in {p.workspace_id for p in publications}:
                pipe.expire(stream_key(workspace_id), STREAM_TTL_SECONDS)
            results = await pipe.execute()
        return [_text(event_id) for event_id in results[: len(publications)]]

    async def _info(self, workspace_id: int) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._redis.xinfo_stream(stream_key(workspace_id))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        return info

    async def latest_id(self, workspace_id: int) -> str:
        """The stream's last id (`0-0` while the workspace has no stream)."""
        info = await self._info(workspace_id)
        return _text(info["last-generated-id"]) if info is not None else _START

    async def _resume(self, workspace_id: int, last_event_id: str) -> tuple[str, str | None]:
        """Where to read from after `last_event_id`, and why to resync first (None: nothing was lost)."""
        position = parse_id(last_event_id)
        info = await self._info(workspace_id)
        if info is None:
            # No stream: nothing was ever published, or it expired / Redis lost it.
            return _START, None if position == (0, 0) else "unknown_id"
        latest = _text(info["last-generated-id"])
        if position is None or position > (parse_id(latest) or (0, 0)):
            return latest, "unknown_id"  # not an id of this stream (recreated since, or garbage)
        first = info.get("first-entry")
        first_position = parse_id(_text(first[0])) if first else None
        # Redis 7 counts what was ever added: fewer left means some were trimmed. Older Redis: assume so.
        trimmed = info.get("entries-added", info["length"] + 1) > info["length"]
        behind = position < (parse_id(latest) or (0, 0))
        if trimmed and behind and (first_position is None or first_position > position):
            # The entry after `position` may have been trimmed; when it was not, this is a harmless
            # extra reload (a stream keeps no record of which ids it trimmed).
            return latest, "events_dropped"
        return format_id(position), None

    async def subscribe(
        self, workspace_id: int, *, last_event_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """The workspace's events after `last_event_id`, then live ones, until the broker closes."""
        if last_event_id is None:
            cursor = await self.latest_id(workspace_id)
        else:
            cursor, reason = await self._resume(workspace_id, last_event_id)
            if reason is not None:
                yield resync(workspace_id, cursor, reason)
        key = stream_key(workspace_id)
        while not self._closed.is_set():
            entries = await self._read(key, cursor)
            if entries is None:
                return
            if len(entries) >= self._read_count:
                # A full read: this subscriber may be more than the buffer behind.
                position, reason = await self._resume(workspace_id, cursor)
                if reason is not None:
                    cursor = position
                    yield resync(workspace_id, cursor, reason)
                    continue
            for entry_id, fields in entries:
                cursor = _text(entry_id)
                yield Event(
                    id=cursor,
                    workspace_id=workspace_id,
                    type=_text(fields[b"type"]),
                    data=orjson.loads(fields[b"data"]),
                )

    async def _read(self, key: str, cursor: str) -> list[tuple[bytes, dict[bytes, bytes]]] | None:
        """The entries after `cursor`, waiting up to BLOCK_MILLISECONDS; None once the broker closes."""
        read = asyncio.ensure_future(
            self._redis.xread({key: cursor}, count=self._read_count, block=BLOCK_MILLISECONDS)
        )
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((read, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not read.done():
                read.cancel()  # the client drops that connection: a blocked XREAD cannot be taken back
                await asyncio.wait((read,))
        if read.cancelled() or self._closed.is_set():
            return None
        streams: Any = read.result()  # RESP2 (the client's default): [[key, [(id, fields), …]]]
        return list(streams[0][1]) if streams else []

    async def aclose(self) -> None:
        """End every subscription and close the connections."""
        if self._closed.is_set():
            return
        self._closed.set()
        await self._redis.aclose()
