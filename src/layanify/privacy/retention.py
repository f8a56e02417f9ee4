"""The retention purge: delete what a workspace keeps no longer, in small batches that never block the inbox.

Each batch (500 rows by default) is its own short unit of work, taken in turn with the other writers
(`WriteGate`, on SQLite) and followed by a short pause, so webhook receipts and processing slip in
between batches. What it removes, per kind:

- messages: older than the policy by Meta's time (not those still queued or being sent), with their
  status history, chat actions and media files (rows and bytes); conversations whose last message is
  gone lose its preview; status reports that never matched a message go by the same age;
- media: stored files created before the limit lose their bytes; the row stays, `failed`, saying why,
  so the message shows the file was removed rather than a broken link;
- webhook events: raw events received before the limit (never pending ones).

A run records its time and counts on the policy, and in the audit log when it deleted anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from layanify.audit import service as audit
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.errors import log_failure
from layanify.media.storage import Storage
from layanify.observability import get_logger
from layanify.privacy import repository
from layanify.privacy.models import KINDS
from layanify.privacy.service import delete_files_after_commit
from layanify.webhooks.models import EventStatus

log = get_logger(__name__)
BATCH_SIZE = 500
# Between two batches: long enough for a waiting webhook receipt or worker batch to take its turn.
PAUSE_SECONDS = 0.02


class Purge:
    """One purge run over one or all workspaces."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        storage: Storage,
        *,
        gate: WriteGate | None = None,
        batch_size: int = BATCH_SIZE,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._storage = storage
        self._gate = gate or WriteGate(enabled=False)
        self._batch = batch_size
        self._pause = pause_seconds
        self.batches = 0  # transactions that deleted something (the tests check the batching)

    async def all_workspaces(self, *, now: datetime | None = None) -> dict[int, dict[str, int]]:
        """Purge every workspace with a limited retention; counts per workspace."""
        async with unit_of_work(self._sessionmaker) as session:
            workspace_ids = await repository.policies_with_limits(session)
        results = {}
        for workspace_id in workspace_ids:
            try:
                results[workspace_id] = await self.workspace(workspace_id, now=now)
            except Exception as exc:
                log_failure(log, "retention_purge_failed", exc, workspace_id=workspace_id)
        return results

    async def workspace(self, workspace_id: int, *, now: datetime | None = None) -> dict[str, int]:
        """Purge one workspace by its policy; returns how many of each kind went (none without a policy)."""
        now = now or utcnow()
        async with unit_of_work(self._sessionmaker) as session:
            policy = await repository.policy(session, workspace_id)
            number_ids = list(await repository.numbers_of(session, workspace_id))
        if policy is None:
            return {}
        counts = dict.fromkeys(KINDS, 0)
        if policy.messages_days is not None:
            before = now - timedelta(days=policy.messages_days)
            counts["messages"] = await self._messages(workspace_id, number_ids, before)
        if policy.media_days is not None:
            before = now - timedelta(days=policy.media_days)
            counts["media"] = await self._media(workspace_id, before, policy.media_days)
        if policy.webhook_events_days is not None:
            before = now - timedelta(days=policy.webhook_events_days)
            counts["webhook_events"] = await self._events(workspace_id, before)
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            policy = await repository.policy(session, workspace_id)
            if policy is not None:
                policy.last_purge_at = now
                policy.last_purge_counts = counts
            if any(counts.values()):
                await audit.record(
                    session,
                    workspace_id=workspace_id,
                    actor_user_id=None,
                    action="retention.purged",
                    target_type="workspace",
                    target_id=str(workspace_id),
                    details=counts,
                )
        log.info("retention_purged", workspace_id=workspace_id, **counts)
        return counts

    async def _batches(self, step: Callable[[Sessionmaker], Awaitable[tuple[int, bool]]]) -> int:
        """Run `step` (one transaction: returns rows deleted and whether there may be more) until done."""
        total = 0
        while True:
            async with self._gate.turn():
                deleted, more = await step(self._sessionmaker)
            total += deleted
            if deleted:
                self.batches += 1
            if not more:
                return total
            await asyncio.sleep(self._pause)

    async def _messages(self, workspace_id: int, number_ids: list[int], before: datetime) -> int:
        async def messages(sessionmaker: Sessionmaker) -> tuple[int, bool]:
            async with unit_of_work(sessionmaker) as session:
                ids = await repository.oldest_messages(session, workspace_id, before, self._batch)
                if not ids:
                    return 0, False
                keys = await repository.stored_files_of_messages(session, ids)
                deleted = await repository.delete_messages(session, ids)
                delete_files_after_commit(session, self._storage, keys)
            return deleted, len(ids) == self._batch

        async def unmatched(sessionmaker: Sessionmaker) -> tuple[int, bool]:
            async with unit_of_work(sessionmaker) as session:
                ids = await repository.old_unmatched_statuses(session, number_ids, before, self._batch)
                if ids:
                    await repository.delete_status_events(session, ids)
            return 0, len(ids) == self._batch  # housekeeping: not counted as messages

        total = await self._batches(messages)
        await self._batches(unmatched)
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            await repository.clear_old_previews(session, workspace_id, before)
        return total

    async def _media(self, workspace_id: int, before: datetime, days: int) -> int:
        reason = f"Deleted by the workspace's retention policy (files are kept {days} days)."

        async def files(sessionmaker: Sessionmaker) -> tuple[int, bool]:
            async with unit_of_work(sessionmaker) as session:
                found = await repository.old_stored_files(session, workspace_id, before, self._batch)
                if not found:
                    return 0, False
                await repository.mark_files_removed(session, [media_id for media_id, _ in found], reason)
                delete_files_after_commit(session, self._storage, [key for _, key in found if key])
            return len(found), len(found) == self._batch

        return await self._batches(files)

    async def _events(self, workspace_id: int, before: datetime) -> int:
        after_id = 0

        async def events(sessionmaker: Sessionmaker) -> tuple[int, bool]:
            nonlocal after_id
            async with unit_of_work(sessionmaker) as session:
                page = await repository.event_page(session, workspace_id, after_id, self._batch)
                if not page:
                    return 0, False
                old = [
                    event_id
                    for event_id, received_at, status in page
                    if received_at < before and status != EventStatus.PENDING.value
                ]
                deleted = await repository.delete_events(session, old) if old else 0
            after_id = page[-1][0]
            # Ids grow with the time of receipt: past the first newer event, the rest is newer too.
            reached_newer = any(received_at >= before for _, received_at, _ in page)
            return deleted, len(page) == self._batch and not reached_newer

        return await self._batches(events)
