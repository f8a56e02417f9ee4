"""The outbox worker: claims due messages, paces them per number and recipient, sends, records.

A claim is committed before anything is sent (status `sending`, a lease, one more attempt), so two
workers never send the same message. Results are recorded in small batches. A worker that dies
between claim and record leaves `sending` messages whose lease runs out: they are queued again after
`LAYANIFY_OUTBOX_RECONCILE_SECONDS` more, unless a status webhook carrying their callback data showed
that Meta did accept them (see `messaging.service.match_by_callback`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.errors import log_failure
from layanify.messaging import repository, service
from layanify.messaging.repository import ClaimedMessage
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.numbers.models import WhatsAppNumber
from layanify.observability import get_logger
from layanify.ratelimit import SendPacer
from layanify.realtime.broker import Broker
from layanify.realtime.publish import announce_message_updated
from layanify.whatsapp.client import GraphClient
from layanify.whatsapp.errors import Action, GraphError, NetworkError, TokenInvalid
from layanify.whatsapp.outbound import build_message_body, parse_content

log = get_logger(__name__)
# How long to wait for a recipient's pair-rate slot before giving the message back to the queue.
PAIR_WAIT_SECONDS = 5.0
# Transport failures that happen before a request leaves: resending cannot duplicate anything.


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter in [50%, 100%]: base, 2×base, 4×base … capped."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


@dataclass
class _Results:
    """Outcomes waiting to be written, by kind."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    disconnected: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sent) + len(self.retry) + len(self.failed) + len(self.disconnected)


def _error_fields(error: GraphError) -> dict[str, Any]:
    return {
        "code": error.code,
        "title": (error.title or type(error).__name__)[:512],
        "details": error.details or error.message or None,
        "action": error.action.value,
    }


class OutboxWorker:
    """Sends queued messages until stopped."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        settings: Settings,
        keyring: Keyring,
        client: GraphClient,
        pacer: SendPacer,
        *,
        name: str = "outbox",
        gate: WriteGate | None = None,
        on_recorded: Callable[[], None] | None = None,
        broker: Broker | None = None,
    ) -> None:
        """`broker`: where open pages learn that a message was sent or failed (None: nobody listens)."""
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._settings = settings
        self._keyring = keyring
        self._client = client
        self._pacer = pacer
        self._name = name
        self._gate = gate or WriteGate(enabled=False)
        self._on_recorded = on_recorded
        self._wake = asyncio.Event()
        self._results = _Results()
        self._results_ready = asyncio.Event()
        self._in_flight: dict[asyncio.Task[None], int] = {}  # sending task -> its message id
        self._slots = asyncio.Semaphore(settings.outbox_concurrency)
        # Claimed messages in this worker at most: those waiting for a pacing slot and those sending.
        self._capacity = max(settings.outbox_batch_size, settings.outbox_concurrency * 4)
        self._numbers: dict[int, tuple[WhatsAppNumber, str | None, float]] = {}
        self._disconnected: set[int] = set()  # numbers Meta refused the token of, until reloaded
        self._in_request: set[int] = set()  # messages whose request may have left: never cancelled
        # Look for crashed workers' claims this often (a cheap indexed UPDATE that usually matches nothing).
        self._recovery_interval = max(
            0.05, min(settings.outbox_lease_seconds, settings.outbox_reconcile_seconds, 10.0)
        )

    def wake(self) -> None:
        """A message was queued or a number reconnected: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop` is set, then finish what is in flight and record it."""
        log.info("outbox_worker_started", worker=self._name)
        recorder = asyncio.create_task(self._record_loop(stop), name=f"{self._name}-recorder")
        last_recovery = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - last_recovery > self._recovery_interval:
                    await self._release_expired()
                    last_recovery = time.monotonic()
                try:
                    claimed = await self.claim_and_dispatch()
                except Exception as exc:
                    log_failure(log, "outbox_claim_failed", exc, worker=self._name)
                    claimed = 0
                if claimed:
                    continue
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(
                    waiters, timeout=self._settings.outbox_poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
        finally:
            await self._stop_in_flight()
            stop.set()
            self._results_ready.set()
            await recorder
            await self.flush_results()
            log.info("outbox_worker_stopped", worker=self._name)

    async def _stop_in_flight(self) -> None:
        """On stop: messages still waiting for a pacing slot go back to the queue at once; requests
        already on their way to Meta are awaited (bounded by the Graph client's timeout)."""
        for task, message_id in list(self._in_flight.items()):
            if message_id not in self._in_request:
                task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def claim_and_dispatch(self) -> int:
        """Claim what is due (in batches, as room frees up) and start sending it.

        Claimed messages wait for their pacing slot outside the HTTP concurrency limit, so one
        number's paced backlog never holds the send slots other numbers need. A claim is one
        statement over the whole outbox, so it is made for a batch, never for each finished send.
        """
        room = self._capacity - len(self._in_flight)
        if room < self._capacity // 4:
            await asyncio.wait(set(self._in_flight), timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            return 1
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.outbox_lease_seconds)
        async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
            claimed = await repository.claim_due(
                session,
                now=now,
                lease_until=lease,
                limit=min(room, self._settings.outbox_batch_size),
                per_number=max(self._settings.rate_limit_per_second // 2, 10),  # half a second of sends
            )
            if claimed:
                await self._load_numbers(session, {m.number_id for m in claimed})
        for message in claimed:
            task = asyncio.create_task(self._send(message, lease))
            self._in_flight[task] = message.id
            task.add_done_callback(self._forget)
        return len(claimed)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)

    async def _load_numbers(self, session: Any, number_ids: set[int]) -> None:
        """Refresh the claimed messages' numbers and their decrypted tokens (cached a few seconds)."""
        now = time.monotonic()
        stale = {i for i in number_ids if i not in self._numbers or now - self._numbers[i][2] > 5.0}
        for number_id, number in (await numbers_repository.by_ids(session, stale)).items():
            try:
                token = numbers.access_token(number, self._keyring)
            except KeyringError:
                log.error("outbox_token_undecryptable", number_id=number_id)
                token = None
            self._numbers[number_id] = (number, token, now)
            if number.connection_state != "disconnected":
                self._disconnected.discard(number_id)

    async def _send(self, message: ClaimedMessage, lease: datetime) -> None:
        """Pace, send and file the outcome of one message."""
        try:
            outcome = await self._attempt(message, lease)
        except asyncio.CancelledError:
            # Stopping while it waited for its turn: nothing left for Meta, so it goes back at once.
            outcome = (
                "retry",
                {
                    "mid": message.id,
                    "at": utcnow(),
                    "refund": 1,
                    "code": None,
                    "title": None,
                    "details": None,
                    "action": None,
                },
            )
        except Exception:
            log.exception("outbox_send_crashed", message_id=message.id)
            outcome = (
                "retry",
                {
                    "mid": message.id,
                    "at": self._later(message.attempts),
                    "refund": 0,
                    "code": None,
                    "title": "Internal error while sending",
                    "details": None,
                    "action": Action.RETRY_LATER.value,
                },
            )
        finally:
            self._in_request.discard(message.id)
        kind, row = outcome
        getattr(self._results, kind).append(row)
        self._results_ready.set()

    def _later(self, attempt: int) -> datetime:
        delay = backoff(
            attempt, self._settings.outbox_retry_base_seconds, self._settings.outbox_retry_max_seconds
        )
        return utcnow() + timedelta(seconds=delay)

    async def _attempt(self, message: ClaimedMessage, lease: datetime) -> tuple[str, dict[str, Any]]:
        number, token, _ = self._numbers[message.number_id]
        base = {"mid": message.id}
        if token is None:
            return "failed", {
                **base,
                "at": utcnow(),
                "code": None,
                "title": "The number has no usable access token",
                "details": "Add the number's access token again in its settings.",
                "action": Action.RECONNECT.value,
            }
        budget = max((lease - utcnow()).total_seconds() - 5.0, 1.0)
        deferred = {**base, "refund": 1, "code": None, "title": None, "details": None, "action": None}
        if number.id in self._disconnected:
            return "retry", {**deferred, "at": utcnow()}  # the claim filter keeps it until reconnected
        if not await self._pacer.recipient_turn(
            number.id, message.recipient, within=min(PAIR_WAIT_SECONDS, budget)
        ):
            return "retry", {**deferred, "at": utcnow() + timedelta(seconds=PAIR_WAIT_SECONDS)}
        per_second = number.rate_limit_per_second or self._settings.rate_limit_per_second
        if not await self._pacer.number_turn(number.id, per_second, within=budget):
            return "retry", {**deferred, "at": utcnow()}
        body = build_message_body(
            message.recipient,
            parse_content(message.content),
            reply_to_wamid=message.reply_to_wamid,
            callback_data=service.callback_data(message.id),
        )
        try:
            async with self._slots:  # only the request itself takes one of the concurrent sends
                self._in_request.add(message.id)
                result = await self._client.send_message(number.phone_number_id, token, body)
        except TokenInvalid as error:
            self._results.disconnected[number.id] = error.remedy
            self._disconnected.add(number.id)  # its other claimed messages wait without trying
            log.warning("number_disconnected", number_id=number.id, code=error.code)
            return "retry", {**base, "at": utcnow(), "refund": 1, **_error_fields(error)}
        except GraphError as error:
            return self._after_error(message, error)
        return "sent", {
            **base,
            "wamid": result.wamid,
            "recipient": result.wa_id or message.recipient,
            "at": utcnow(),
        }

    def _after_error(self, message: ClaimedMessage, error: GraphError) -> tuple[str, dict[str, Any]]:
        """Retry what Meta asks us to retry (with backoff, up to the limit); fail the rest for good."""
        base = {"mid": message.id, **_error_fields(error)}
        log.info("outbox_send_error", message_id=message.id, code=error.code, action=error.action.value)
        if not error.retryable:
            return "failed", {**base, "at": utcnow()}
        if message.attempts >= self._settings.outbox_max_attempts:
            base["details"] = f"Gave up after {message.attempts} attempts. " + (base["details"] or "")
            return "failed", {**base, "at": utcnow()}
        delay_at = self._later(message.attempts)
        if isinstance(error, NetworkError) and error.maybe_sent:
            # The request may have reached Meta and only the answer was lost. Wait long enough for its
            # status webhook to name the message (callback data) before trying again.
            delay_at = max(delay_at, utcnow() + timedelta(seconds=self._settings.outbox_reconcile_seconds))
        return "retry", {**base, "at": delay_at, "refund": 0}

    async def _record_loop(self, stop: asyncio.Event) -> None:
        """Write outcomes in small batches: every 50 ms while sending, at once when many are waiting."""
        while not stop.is_set() or len(self._results):
            await self._results_ready.wait()
            self._results_ready.clear()
            if len(self._results) < 200 and not stop.is_set():
                await asyncio.sleep(0.05)
            try:
                await self.flush_results()
            except Exception as exc:
                log_failure(log, "outbox_record_failed", exc, worker=self._name)
                await asyncio.sleep(1.0)
                self._results_ready.set()
            if stop.is_set() and not self._in_flight:
                break

    async def flush_results(self) -> None:
        """Record every waiting outcome in one unit of work."""
        results, self._results = self._results, _Results()
        if not len(results):
            return
        try:
            async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
                await repository.record_sent(session, results.sent)
                await repository.record_retry(session, results.retry)
                await repository.record_failed(session, results.failed)
                for number_id, reason in results.disconnected.items():
                    await numbers.mark_disconnected(session, number_id, reason)
                if results.sent:
                    await service.match_statuses_for_sent(session, [r["wamid"] for r in results.sent])
                if self._broker is not None and (results.sent or results.failed):
                    ids = [r["mid"] for r in results.sent] + [r["mid"] for r in results.failed]
                    for mid, workspace_id, conversation_id, status in await repository.brief(session, ids):
                        announce_message_updated(
                            session,
                            self._broker,
                            workspace_id=workspace_id,
                            conversation_id=conversation_id,
                            message_id=mid,
                            status=status,
                        )
        except BaseException:
            # Put them back: the next flush tries again (the leases keep the messages ours meanwhile).
            self._results.sent[:0] = results.sent
            self._results.retry[:0] = results.retry
            self._results.failed[:0] = results.failed
            self._results.disconnected.update(results.disconnected)
            raise
        if self._on_recorded is not None:
            self._on_recorded()

    async def _release_expired(self) -> None:
        """Queue again what a crashed worker claimed and never recorded."""
        now = utcnow()
        before = now - timedelta(seconds=self._settings.outbox_reconcile_seconds)
        try:
            async with self._gate.turn(), unit_of_work(self._sessionmaker) as session:
                released = await repository.release_expired_claims(session, before=before, now=now)
        except Exception as exc:
            log_failure(log, "outbox_release_failed", exc, worker=self._name)
            return
        if released:
            log.warning("outbox_claims_released", count=released, worker=self._name)
