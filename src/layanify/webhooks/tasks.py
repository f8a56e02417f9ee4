"""The webhook worker: claims due events from the database and processes them.

Each batch is one unit of work: claim (row locks on PostgreSQL, the single writer on SQLite), process
every event inside its own savepoint, record the outcome, commit. A worker killed mid-batch commits
nothing, so its events stay pending and are claimed again.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from layanify.config import Settings
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.observability import get_logger
from layanify.webhooks import repository, service
from layanify.webhooks.models import EventStatus
from layanify.whatsapp.payloads import PayloadError

log = get_logger(__name__)
MAX_BACKOFF_SECONDS = 3600.0


def retry_delay(attempt: int, base: float) -> float:
    """Exponential backoff with ±20% jitter: base, 2×base, 4×base … capped at an hour."""
    jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return min(base * 2.0 ** max(attempt - 1, 0) * jitter, MAX_BACKOFF_SECONDS)


class WebhookWorker:
    """Processes pending webhook events until stopped."""

    def __init__(self, sessionmaker: Sessionmaker, settings: Settings, *, name: str = "worker") -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._name = name
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New events were stored: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; sleep until woken or the poll interval when idle."""
        log.info("webhook_worker_started", worker=self._name)
        while not stop.is_set():
            try:
                processed = await self.process_due_batch()
            except Exception:
                log.exception("webhook_worker_batch_failed", worker=self._name)
                processed = 0
                await asyncio.sleep(self._settings.worker_poll_seconds)
            if processed:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters, timeout=self._settings.worker_poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
        log.info("webhook_worker_stopped", worker=self._name)

    async def process_due_batch(self) -> int:
        """Claim and process one batch of due events; returns how many were claimed."""
        now = utcnow()
        settings = self._settings
        async with unit_of_work(self._sessionmaker) as session:
            events = await repository.claim_due(session, now, settings.worker_batch_size)
            for event_id, body, attempts, received_at in events:
                attempt = attempts + 1
                try:
                    async with session.begin_nested():
                        outcome = await service.process_body(session, body, received_at)
                except Exception as exc:
                    session.expunge_all()  # objects touched by the rolled-back savepoint are stale
                    give_up = attempt >= settings.worker_max_attempts or isinstance(exc, PayloadError)
                    delay = retry_delay(attempt, settings.worker_retry_base_seconds)
                    await repository.mark(
                        session,
                        event_id,
                        status=EventStatus.FAILED if give_up else EventStatus.PENDING,
                        attempts=attempt,
                        next_attempt_at=now + timedelta(seconds=delay),
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                        workspace_id=await service.workspace_of(session, body),
                    )
                    log.warning(
                        "webhook_event_failed",
                        event_id=event_id,
                        attempt=attempt,
                        gave_up=give_up,
                        retry_in_seconds=None if give_up else round(delay, 1),
                        error=type(exc).__name__,
                    )
                    continue
                await repository.mark(
                    session,
                    event_id,
                    status=EventStatus.PROCESSED,
                    attempts=attempt,
                    processed_at=utcnow(),
                    last_error=None,
                    workspace_id=min(outcome.workspace_ids) if outcome.workspace_ids else None,
                    fields=",".join(sorted(set(outcome.fields)))[:256],
                    summary=outcome.summary(),
                )
                log.info(
                    "webhook_event_processed",
                    event_id=event_id,
                    fields=outcome.fields,
                    counts=outcome.counts,
                    message_ids=outcome.message_ids[:20],
                )
        return len(events)
