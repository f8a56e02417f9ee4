"""Publishing after the commit: an event goes out only once the change it announces is committed.

Events registered during a unit of work are gathered on the session and published together, in order
and without exact duplicates, by one after-commit hook (one round trip on Redis). A rolled-back unit
of work publishes nothing. Register an event only once the savepoint that made its change (if any) has
been released: a savepoint rolled back later does not take the registration back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.db.session import after_commit
from layanify.realtime.broker import Broker
from layanify.realtime.events import CONVERSATION_UPDATED, MESSAGE_CREATED, MESSAGE_UPDATED, Publication

_PENDING_KEY = "layanify_realtime_pending"


def publish_after_commit(
    session: AsyncSession, broker: Broker | None, workspace_id: int, type: str, data: Mapping[str, Any]
) -> None:
    """Publish an event once the unit of work owning `session` commits (nothing when it rolls back or
    when there is no broker, e.g. a test app without one)."""
    if broker is None:
        return
    pending: dict[int, list[Publication]] = session.info.setdefault(_PENDING_KEY, {})
    key = id(broker)
    if key not in pending:
        publications = pending[key] = []
        target = broker

        async def publish() -> None:
            session.info.get(_PENDING_KEY, {}).pop(key, None)  # a later unit of work starts afresh
            await target.publish_many(_unique(publications))

        after_commit(session, publish)
    pending[key].append(Publication(workspace_id, type, dict(data)))


def _unique(publications: list[Publication]) -> list[Publication]:
    """The publications in order, each identical one once."""
    seen: set[tuple[int, str, bytes]] = set()
    unique = []
    for p in publications:
        key = (p.workspace_id, p.type, orjson.dumps(p.data, option=orjson.OPT_SORT_KEYS))
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def announce_message_created(
    session: AsyncSession, broker: Broker | None, *, workspace_id: int, conversation_id: int, message_id: int
) -> None:
    """After the commit: `message.created`, then `conversation.updated` (its preview, unread count,
    window) for the conversation it is in."""
    data = {"conversation_id": conversation_id, "message_id": message_id}
    publish_after_commit(session, broker, workspace_id, MESSAGE_CREATED, data)
    announce_conversation_updated(session, broker, workspace_id=workspace_id, conversation_id=conversation_id)


def announce_message_updated(
    session: AsyncSession,
    broker: Broker | None,
    *,
    workspace_id: int,
    conversation_id: int,
    message_id: int,
    status: str,
) -> None:
    """After the commit: `message.updated` with the message's new status."""
    data = {"conversation_id": conversation_id, "message_id": message_id, "status": status}
    publish_after_commit(session, broker, workspace_id, MESSAGE_UPDATED, data)


def announce_conversation_updated(
    session: AsyncSession, broker: Broker | None, *, workspace_id: int, conversation_id: int
) -> None:
    """After the commit: `conversation.updated` (assignment, status, window, preview …)."""
    data = {"conversation_id": conversation_id}
    publish_after_commit(session, broker, workspace_id, CONVERSATION_UPDATED, data)
