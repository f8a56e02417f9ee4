"""What the real-time stream carries: events of one workspace, named by type, with ids only in their data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The event types. Their data carries ids, never message content: the page fetches what it shows.
MESSAGE_CREATED = "message.created"  # {conversation_id, message_id}
MESSAGE_UPDATED = "message.updated"  # {conversation_id, message_id, status}
CONVERSATION_UPDATED = "conversation.updated"  # {conversation_id}
# Sent by the broker, not published: events after the subscriber's last id are no longer buffered
# (or the id is unknown), so the page must reload its lists instead of applying events.
RESYNC = "resync"

# How many events each workspace keeps for replay (the Redis stream is trimmed to about this many).
BUFFER_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one workspace; `id` orders the workspace's events and resumes a stream after it."""

    id: str
    workspace_id: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Publication:
    """An event to publish: the broker gives it its id."""

    workspace_id: int
    type: str
    data: dict[str, Any]


def parse_id(value: str) -> tuple[int, int] | None:
    """`"<a>-<b>"` (both brokers' id shape, Redis stream ids included) as a comparable pair, or None."""
    first, sep, second = value.strip().partition("-")
    if not sep or not first.isdigit() or not second.isdigit() or len(first) > 20 or len(second) > 20:
        return None
    return int(first), int(second)


def format_id(position: tuple[int, int]) -> str:
    """The id string of a pair from `parse_id`."""
    return f"{position[0]}-{position[1]}"


def resync(workspace_id: int, position: str, reason: str) -> Event:
    """The event that tells a subscriber to reload: `position` is where its stream goes on from."""
    return Event(id=position, workspace_id=workspace_id, type=RESYNC, data={"reason": reason})
