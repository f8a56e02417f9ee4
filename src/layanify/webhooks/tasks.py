"""The webhook worker: claims due events from the database and processes them.

Each batch is one unit of work: claim (row locks on PostgreSQL, the single writer on SQLite), process
every event inside its own savepoint, record the outcome, commit. A worker killed mid-batch commits
nothing, so its events stay pending and are claimed again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from layanify.automation import service as automation
from layanify.config import Settings
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, WriteGate, after_commit_call, unit_of_work
from layanify.errors import log_failure
from layanify.messaging.models import Message
from layanify.observability import get_logger
from layanify.realtime.broker import Broker
from layanify.realtime.events import CONVERSATION_UPDATED, MESSAGE_CREATED, MESSAGE_UPDATED
from layanify.realtime.publish import publish_after_commit
from layanify.runtime import defer_to_receipts
from layanify.webhooks import batch, repository, service
from layanify.webhooks.models import EventStatus
from layanify.whatsapp.payloads import PayloadError

log = get_logger(__name__)
MAX_BACKOFF_SECONDS = 3600.0


class BatchSizer:
    """How many events the next batch claims, so that one batch takes about its time budget.

    On SQLite a batch holds the single write lock, and the web UI's and API's writes wait for the whole
    batch (webhook receipts have a file of their own, decision 35). With a budget, the size follows the
    measured cost of an event (moving average of batch time / events, which includes the per-batch
    overhead, so the size settles where overhead + size × cost fits the budget). Without one — or while
    `receipt_rate()` is 0, no receipt arrived lately — batches are full: fewer, bigger transactions
    drain a backlog fastest.

    With `receipt_rate` (in-process workers), the budget follows the webhook rate: `DELAYED_RECEIPTS /
    rate`, between the budget and STRETCH times it. An in-process batch shares the core with the receipts
    for as long as it runs: at a few hundred webhooks a second a longer batch slows few of them and costs
    less per event (the ~11 ms a batch costs whatever its size is spread wider); at thousands a second
    the budget itself holds (batches of 250 there left 12 % of the half-rate load unserved, decision 35).
    """

    SMOOTHING = 0.3
    MINIMUM = 4
    DELAYED_RECEIPTS = 100.0
    STRETCH = 2.5
    WINDOW = 12  # recent batches the overhead is fitted on
    SPREAD = 1.5  # their largest size must be this many times their smallest for a fit
    PROBE_EVERY = 6  # while they are all alike, every 6th batch is twice as big, so the fit stays current

    def __init__(
        self, maximum: int, budget: float | None, receipt_rate: Callable[[], float] | None = None
    ) -> None:
        self._maximum = maximum
        self._budget = budget
        self._receipt_rate = receipt_rate
        self._per_event: float | None = None
        self._recent: collections.deque[tuple[int, float]] = collections.deque(maxlen=self.WINDOW)
        self._floor = 0  # the smallest batch whose events take at least as long as its own statements
        self._fitted: float | None = None  # overhead / cost, smoothed over the fits
        self._since_spread = 0  # batches observed since the window last held sizes far enough apart
        self._probe: int | None = None  # the size of the probe `size` asked for, until it is observed

    def budget(self) -> float | None:
        """The time the next batch may take (None: no limit, full batches)."""
        if self._budget is None or self._receipt_rate is None:
            return self._budget
        rate = self._receipt_rate()
        if rate <= 0:
            return None
        return min(max(self.DELAYED_RECEIPTS / rate, self._budget), self._budget * self.STRETCH)

    def size(self) -> int:
        """The number of events to claim now."""
        budget = self.budget()
        if budget is None or self._per_event is None:
            self._since_spread = 0  # full batches need no probe, nor owe one when a budget comes back
            return self._maximum
        fitting = max(int(budget / self._per_event), self._floor)
        size = max(min(self.MINIMUM, self._maximum), min(self._maximum, fitting))
        if self._since_spread >= self.PROBE_EVERY and size < self._maximum:
            size = self._probe = min(self._maximum, 2 * size)
        return size

    def capacity(self) -> float | None:
        """Events a second at the measured cost of an event (batch time / events), once one is known."""
        return 1.0 / self._per_event if self._per_event else None

    def observe(self, events: int, seconds: float) -> None:
        """Record how long a batch of `events` took."""
        if events <= 0:
            return
        seconds = max(seconds, 0.0)
        probe, self._probe = self._probe, None
        if events == probe:  # a probe informs the fit, not the budget's per-event cost
            self._since_spread = 0
        else:  # a batch, or a probe that found fewer events due than it asked for
            cost = seconds / events
            previous = self._per_event
            self._per_event = cost if previous is None else previous + self.SMOOTHING * (cost - previous)
        self._recent.append((events, seconds))
        self._fit_floor()

    def _fit_floor(self) -> None:
        """Fit `seconds = overhead + events × cost` on the recent batches (least squares) and keep the
        floor at overhead / cost: below it a batch spends most of its time on its own statements.

        The budget alone shrank batches until overhead + size × cost fit in it, however small that left
        them: on a machine where the overhead neared the budget (~30 of 40 ms) batches of ~9 events
        drained a backlog at a fifth of the rate full batches did. Past the floor the budget cannot be
        kept anyway (the overhead alone is most of it). Without sizes far enough apart to tell overhead
        from cost the last fit stands, and `size` sends a batch twice as big now and then to get them.
        """
        sizes = [n for n, _ in self._recent]
        if len(sizes) < 3 or max(sizes) < self.SPREAD * min(sizes):
            self._since_spread += 1
            return
        self._since_spread = 0
        mean_n = sum(sizes) / len(sizes)
        mean_t = sum(t for _, t in self._recent) / len(sizes)
        spread = sum((n - mean_n) ** 2 for n in sizes)
        cost = sum((n - mean_n) * (t - mean_t) for n, t in self._recent) / spread
        overhead = mean_t - cost * mean_n
        if cost > 0 and overhead > 0:
            fitted, previous = overhead / cost, self._fitted
            self._fitted = fitted if previous is None else previous + self.SMOOTHING * (fitted - previous)
            self._floor = min(self._maximum, math.ceil(self._fitted))


def retry_delay(attempt: int, base: float) -> float:
    """Exponential backoff with ±20% jitter: base, 2×base, 4×base … capped at an hour."""
    jitter: float = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    return min(base * 2.0 ** max(attempt - 1, 0) * jitter, MAX_BACKOFF_SECONDS)


class WebhookWorker:
    """Processes pending webhook events until stopped."""

    # In-process, while webhooks arrive OVERLOAD times faster than this worker processes events, its
    # batches take at most LAYANIFY_WORKER_OVERLOAD_SHARE of the time (`_overload_rest`).
    OVERLOAD = 2.0

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        settings: Settings,
        *,
        name: str = "worker",
        gate: WriteGate | None = None,
        receipts_busy: Callable[[], bool] | None = None,
        receipt_rate: Callable[[], float] | None = None,
        on_automation: Callable[[], None] | None = None,
        broker: Broker | None = None,
    ) -> None:
        """`receipts_busy` (in-process workers): while it is true, receipts go first; `receipt_rate`:
        webhooks a second lately, which sets the batches' time budget on SQLite (`BatchSizer`).
        `on_automation` is called after a commit that queued automated replies or read/typing calls
        (wakes their senders).
        `broker` gets the real-time events of each committed batch (none without one)."""
        # Only SQLite's single write lock makes other writers wait for a whole batch. On PostgreSQL (row
        # locks) they commit beside it, and an in-process worker yields the event loop at every statement.
        budget = (settings.worker_batch_budget_ms / 1000 or None) if settings.is_sqlite else None
        self._sizer = BatchSizer(settings.worker_batch_size, budget, receipt_rate)
        self._receipt_rate = receipt_rate
        self._last_batch_full = False
        self._last_batch_seconds = 0.0
        self._sessionmaker = sessionmaker
        self._broker = broker
        self._receipts_busy = receipts_busy
        self._on_automation = on_automation
        self._gate = gate or WriteGate(enabled=False)
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
            await self._let_receipts_go_first(stop)
            try:
                processed = await self.process_due_batch()
            except Exception as exc:
                log_failure(log, "webhook_worker_batch_failed", exc, worker=self._name)
                processed = 0
                await asyncio.sleep(self._settings.worker_poll_seconds)
            if self._last_batch_full:
                continue  # a full batch: there is probably more waiting
            if processed:
                # A partial batch: more is trickling in. Let some gather so the next batch is fuller —
                # events also gathered while this batch ran, so only the rest of the coalescing time.
                # (A full pause after every batch capped processing at batch / (pause + batch time):
                # ~800 messages/s on SQLite at 1,000 arriving a second.)
                rest = self._settings.worker_coalesce_seconds - self._last_batch_seconds
                if rest > 0:
                    await asyncio.sleep(rest)
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters, timeout=self._settings.worker_poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
            if self._wake.is_set() and not stop.is_set():
                # Woken by a receipt: let a few more arrive so one batch carries them. A batch costs a
                # dozen statements whatever its size; measured, batches of one or two events cost
                # ~4 ms of CPU per event against ~1 ms in full batches.
                await asyncio.sleep(self._settings.worker_coalesce_seconds)
        log.info("webhook_worker_stopped", worker=self._name)

    async def _let_receipts_go_first(self, stop: asyncio.Event) -> None:
        """In-process, webhook receipts share this core: while some wait, they go first.

        Meta waits for the 200 and retries slow answers; processing can lag a little instead. The wait
        is bounded (`worker_max_defer_seconds`) so processing always moves on under constant load.
        """
        if self._receipts_busy is None:
            return
        limit = self._settings.worker_max_defer_seconds
        started = asyncio.get_running_loop().time()
        rest = min(self._overload_rest(), limit)
        if rest > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rest)
        left = limit - (asyncio.get_running_loop().time() - started)
        await defer_to_receipts(self._receipts_busy, max_seconds=max(left, 0.0), stop=stop)

    def _overload_rest(self) -> float:
        """How long to rest before the next batch so that batches take at most `worker_overload_share` of
        the time, while webhooks arrive OVERLOAD times faster than this worker processes (0 otherwise).

        Then processing cannot keep up whatever share it takes, and what it took came out of the
        receipts: between 1,000 webhooks/s and saturation the in-process worker took whatever the
        receipts left, the server ran at 100 % of its core, and acks slowed (decision 42: paced at
        9,000/s, p50 3.2 ms against 1.7 ms with half the time). What processing gives up meanwhile it
        makes up at full speed once the rate falls; `layanify worker` processes, on cores of their own,
        are not limited. Below OVERLOAD nothing is limited, so a worker that can keep up does.
        """
        if self._receipt_rate is None or self._last_batch_seconds <= 0:
            return 0.0
        capacity = self._sizer.capacity()
        if capacity is None or self._receipt_rate() < self.OVERLOAD * capacity:
            return 0.0
        share = self._settings.worker_overload_share
        return self._last_batch_seconds * (1 - share) / share

    async def process_due_batch(self) -> int:
        """Claim and process one batch of due events; returns how many were claimed.

        The batch is first applied set-wise (`batch.process_batch`) inside a savepoint; the events that
        path does not handle — or all of them, when it fails and its savepoint is rolled back — are then
        applied one by one, each in its own savepoint, so one bad event cannot hold up the others.
        """
        limit = self._sizer.size()
        async with self._gate.turn():
            started = time.perf_counter()
            claimed = await self._process_batch(limit)
            self._last_batch_seconds = time.perf_counter() - started
            self._sizer.observe(claimed, self._last_batch_seconds)
        self._last_batch_full = claimed >= limit
        return claimed

    async def _process_batch(self, limit: int) -> int:
        now = utcnow()
        async with unit_of_work(self._sessionmaker) as session:
            # SQLite: receipts waiting in their own file, as many as this batch may claim (moving a whole
            # surge at once made this batch stall the receipts it was meant to let go first).
            await service.take_received(session, limit)
            events = await repository.claim_due(session, now, limit)
            if not events:
                return 0
            try:
                async with session.begin_nested():
                    outcomes, left = await batch.process_batch(session, [(e[0], e[1], e[3]) for e in events])
            except Exception as exc:
                session.expunge_all()  # objects touched by the rolled-back savepoint are stale
                log.info("webhook_batch_retried_per_event", events=len(events), error=type(exc).__name__)
                outcomes, left = {}, [e[0] for e in events]
            await self._record_processed(
                session, [(e[0], e[2] + 1, outcomes[e[0]]) for e in events if e[0] in outcomes]
            )
            for event_id, body, attempts, received_at in events:
                if event_id in left:
                    await self._process_one(session, now, event_id, body, attempts + 1, received_at)
        return len(events)

    async def _process_one(
        self,
        session: AsyncSession,
        now: datetime,
        event_id: int,
        body: bytes,
        attempt: int,
        received_at: datetime,
    ) -> None:
        """Apply one event in its own savepoint; a failure schedules a retry or gives up."""
        try:
            async with session.begin_nested():
                outcome = await service.process_body(session, body, received_at)
        except Exception as exc:
            session.expunge_all()
            give_up = attempt >= self._settings.worker_max_attempts or isinstance(exc, PayloadError)
            delay = retry_delay(attempt, self._settings.worker_retry_base_seconds)
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
            return
        await self._record_processed(session, [(event_id, attempt, outcome)])

    async def _record_processed(
        self, session: AsyncSession, done: list[tuple[int, int, service.Outcome]]
    ) -> None:
        if not done:
            return
        processed_at = utcnow()
        await repository.mark_many(
            session,
            [
                {
                    "event_id": event_id,
                    "status": EventStatus.PROCESSED.value,
                    "attempts": attempt,
                    "processed_at": processed_at,
                    "last_error": None,
                    "workspace_id": min(outcome.workspace_ids) if outcome.workspace_ids else None,
                    "fields": ",".join(sorted(set(outcome.fields)))[:256],
                    "summary": outcome.summary(),
                }
                for event_id, attempt, outcome in done
            ],
        )
        # One line per batch: ids, not content (the per-event summaries are on the events themselves).
        totals: dict[str, int] = {}
        for _, _, outcome in done:
            for key, n in outcome.counts.items():
                totals[key] = totals.get(key, 0) + n
        message_ids = [m for _, _, outcome in done for m in outcome.message_ids]
        replies = await self._automate(session, message_ids)
        await self._announce(session, [outcome for _, _, outcome in done], replies)
        log.info(
            "webhook_events_processed",
            event_ids=[event_id for event_id, _, _ in done],
            counts=totals,
            message_ids=message_ids if len(message_ids) <= 50 else [message_ids[0], "…", message_ids[-1]],
        )

    async def _automate(self, session: AsyncSession, message_ids: list[int]) -> list[int]:
        """Apply the numbers' behaviour settings to the messages just stored, in this unit of work: an
        auto-reply is queued exactly when its message is stored. A failure here costs the automation of
        this batch (logged), never the messages themselves. Returns the queued replies' ids."""
        if not message_ids:
            return []
        try:
            async with session.begin_nested():
                reaction = await automation.react_to_inbound(session, message_ids)
        except Exception:
            session.expunge_all()
            log.exception("automation_failed", message_ids=message_ids[:50])
            return []
        if reaction.replies or reaction.read_calls or reaction.typing_calls:
            after_commit_call(session, self._on_automation)
            log.info(
                "automation_applied",
                replies=reaction.replies,
                read_calls=reaction.read_calls,
                typing_calls=reaction.typing_calls,
                skipped=reaction.skipped,
            )
        return reaction.replies

    async def _announce(
        self, session: AsyncSession, outcomes: list[service.Outcome], replies: list[int]
    ) -> None:
        """Register the real-time events of what was just processed; they go out after the commit.

        One event per message, ids only: `message.created` for each new inbound message and automated
        reply, `message.updated` once per message a status moved (with its latest status), then one
        `conversation.updated` per conversation that got a message. The broker publishes them in one go.
        """
        if self._broker is None:
            return
        created = [change for outcome in outcomes for change in outcome.stored]
        for reply_id in replies:
            reply = await session.get(Message, reply_id)  # just queued: in the identity map, no query
            if reply is not None:
                created.append(
                    service.MessageChange(reply.workspace_id, reply.conversation_id, reply.id, reply.status)
                )
        advanced = {change.message_id: change for outcome in outcomes for change in outcome.advanced}
        broker = self._broker
        for change in created:
            ids = {"conversation_id": change.conversation_id, "message_id": change.message_id}
            publish_after_commit(session, broker, change.workspace_id, MESSAGE_CREATED, ids)
        for change in advanced.values():
            moved = {
                "conversation_id": change.conversation_id,
                "message_id": change.message_id,
                "status": change.status,
            }
            publish_after_commit(session, broker, change.workspace_id, MESSAGE_UPDATED, moved)
        touched = dict.fromkeys((c.workspace_id, c.conversation_id) for c in created)
        for workspace_id, conversation_id in touched:
            conversation = {"conversation_id": conversation_id}
            publish_after_commit(session, broker, workspace_id, CONVERSATION_UPDATED, conversation)
