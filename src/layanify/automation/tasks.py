"""The chat-action worker: sends due mark-as-read and typing-indicator calls.

Like the outbox, it claims from the database (a lease that a crashed worker's claim outlives), calls
the Graph API outside any transaction, and files the outcome in a second short unit of work. A call
is paced with the number's messages (it uses the same endpoint and the same per-number limit).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from layanify.automation import repository
from layanify.automation.repository import ClaimedAction
from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.errors import log_failure
from layanify.messaging.tasks import backoff
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.observability import get_logger
from layanify.ratelimit import SendPacer
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.errors import GraphError

log = get_logger(__name__)
LEASE = timedelta(seconds=60)
BATCH = 50
MAX_ATTEMPTS = 5
PACE_WAIT_SECONDS = 10.0


class ActionWorker:
    """Sends pending chat actions until stopped; `wake()` after a commit that queued one."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        settings: Settings,
        keyring: Keyring,
        client: GraphClient,
        pacer: SendPacer,
        *,
        gate: WriteGate | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._keyring = keyring
        self._client = client
        self._pacer = pacer
        self._gate = gate or WriteGate(enabled=False)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send due actions; when none are due, sleep until woken or the poll interval passes."""
        while not stop.is_set():
            try:
                done = await self.run_due()
            except Exception as exc:
                log_failure(log, "chat_actions_failed", exc)
                done = 0
            if done:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters, timeout=self._settings.worker_poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def run_due(self) -> int:
        """Claim and send one batch of due actions; returns how many were claimed."""
        now = utcnow()
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            claimed = await repository.claim_due_actions(
                session, now=now, lease_until=now + LEASE, limit=BATCH
            )
            numbers_by_id = await numbers_repository.by_ids(session, {a.number_id for a in claimed})
        if not claimed:
            return 0
        tokens: dict[int, tuple[str, str | None]] = {}
        for number_id, number in numbers_by_id.items():
            try:
                tokens[number_id] = (number.phone_number_id, numbers.access_token(number, self._keyring))
            except KeyringError:
                tokens[number_id] = (number.phone_number_id, None)
        await asyncio.gather(*(self._send(action, tokens.get(action.number_id)) for action in claimed))
        return len(claimed)

    async def _send(self, action: ClaimedAction, number: tuple[str, str | None] | None) -> None:
        phone_number_id, token = number if number is not None else ("", None)
        if token is None:
            await self._finish(action, "failed", error="the number has no usable access token")
            return
        per_second = self._settings.rate_limit_per_second
        if not await self._pacer.number_turn(action.number_id, per_second, within=PACE_WAIT_SECONDS):
            await self._finish(action, "pending", due_at=utcnow())
            return
        try:
            await self._client.mark_read(phone_number_id, token, action.wamid, typing=action.kind == "typing")
        except GraphError as error:
            retry = error.retryable and action.attempts < MAX_ATTEMPTS
            log.info("chat_action_error", action_id=action.id, kind=action.kind, code=error.code, retry=retry)
            delay = backoff(action.attempts, 2.0, 300.0)
            await self._finish(
                action,
                "pending" if retry else "failed",
                due_at=utcnow() + timedelta(seconds=delay),
                error_code=error.code,
                error=f"{error.title or type(error).__name__}: {error.details or ''}"[:2000],
            )
            return
        except Exception as exc:  # network errors and the like: try again later
            retry = action.attempts < MAX_ATTEMPTS
            delay = backoff(action.attempts, 2.0, 300.0)
            await self._finish(
                action,
                "pending" if retry else "failed",
                due_at=utcnow() + timedelta(seconds=delay),
                error=type(exc).__name__,
            )
            return
        await self._finish(action, "done")

    async def _finish(
        self,
        action: ClaimedAction,
        status: str,
        *,
        due_at: datetime | None = None,
        error_code: int | None = None,
        error: str | None = None,
    ) -> None:
        at = utcnow()
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            await repository.finish_action(
                session, action.id, status=status, at=at, due_at=due_at, error_code=error_code, error=error
            )
            marked = 0
            if status == "done" and action.message_id is not None:
                marked = await repository.mark_inbound_read(
                    session, action.conversation_id, action.message_id, at=at
                )
        log.info(
            "chat_action_sent" if status == "done" else "chat_action_not_sent",
            action_id=action.id,
            kind=action.kind,
            conversation_id=action.conversation_id,
            status=status,
            messages_marked_read=marked,
        )
