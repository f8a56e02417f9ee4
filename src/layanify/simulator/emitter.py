"""Webhook delivery: a heap of due events, a few workers POSTing signed bodies, retries with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from layanify.simulator.config import SimulatorConfig
from layanify.simulator.state import Number
from layanify.simulator.webhooks import serialise, status_body
from layanify.whatsapp.signature import sign

# Called once when the event is due: applies its effect (a status reaches the phone) and returns what to
# deliver: a finished body, a status item of a number (batched with others due at once), or None.
StatusItem = tuple[Number, dict[str, Any]]
MakeBody = Callable[[], bytes | StatusItem | None]
MAX_RELEASE = 1000  # due events handled per scheduler turn, so a backlog never blocks the loop


@dataclass
class _Job:
    make: MakeBody | None
    body: bytes | None = None
    signature: str = ""
    attempt: int = 0
    duplicate: bool = False
    delivery_id: int = 0


class Emitter:
    """Schedules webhook events and delivers them to the callback URL, never on the request path."""

    def __init__(self, config: SimulatorConfig, http: httpx.AsyncClient, rng: random.Random) -> None:
        self._config = config
        self._http = http
        self._rng = rng
        self._heap: list[tuple[float, int, _Job]] = []  # (due, sequence, job)
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._ready: asyncio.Queue[_Job] | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.pending = 0  # scheduled or in flight, not yet delivered or given up
        self.paused = False
        self.log: deque[dict[str, Any]] = deque(maxlen=config.webhook_log_limit)

    @property
    def running(self) -> bool:
        """Whether the scheduler and workers are running."""
        return bool(self._tasks)

    def start(self) -> None:
        """Start the scheduler and the delivery workers on the running loop (idempotent)."""
        if self._tasks:
            return
        self._ready = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._schedule_loop(), name="simulator-scheduler"))
        for index in range(max(1, self._config.webhook_concurrency)):
            self._tasks.append(asyncio.create_task(self._deliver_loop(), name=f"simulator-webhook-{index}"))

    async def stop(self) -> None:
        """Cancel the scheduler and workers; undelivered events are dropped."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._heap.clear()
        self.pending = 0

    def schedule(self, delay: float, make: MakeBody) -> None:
        """Run `make` after `delay` seconds and deliver what it returns."""
        self.pending += 1
        self._push(time.monotonic() + max(0.0, delay), _Job(make))

    def _push(self, due: float, job: _Job) -> None:
        if not self._tasks:
            self.start()
        earliest = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, next(self._seq), job))
        if earliest and self._wake is not None:
            self._wake.set()

    def pause(self) -> None:
        """Hold due events (they pile up, as during an outage at Meta) until resume()."""
        self.paused = True

    def resume(self) -> None:
        """Release held events: those due together go out together (batched when configured)."""
        self.paused = False
        if self._wake is not None:
            self._wake.set()

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the tests' API
        """Wait until every scheduled event was delivered or given up; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while self.pending > 0:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.pending} webhook events still pending after {timeout}s")
            await asyncio.sleep(0.005)

    async def _schedule_loop(self) -> None:
        assert self._wake is not None
        assert self._ready is not None
        while True:
            now = time.monotonic()
            due: list[_Job] = []
            while not self.paused and self._heap and self._heap[0][0] <= now and len(due) < MAX_RELEASE:
                due.append(heapq.heappop(self._heap)[2])
            if len(due) > 1 and self._config.reorder:
                self._rng.shuffle(due)
            self._release_all(due)
            self._wake.clear()
            if not self.paused and self._heap and self._heap[0][0] <= time.monotonic():
                await asyncio.sleep(0)
                continue
            timeout = self._heap[0][0] - time.monotonic() if self._heap and not self.paused else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _release_all(self, jobs: list[_Job]) -> None:
        """Run due events and queue their deliveries; status items of one number are batched.

        `pending` counts events not yet run plus deliveries not yet finished: a bytes event becomes its
        own delivery; status items are each done when merged, and each batch is one new delivery.
        """
        assert self._ready is not None
        batch_max = max(1, self._config.webhook_batch_max)
        batches: dict[str, tuple[Number, list[dict[str, Any]]]] = {}
        for job in jobs:
            if job.make is None:  # a retry or a duplicate: already built
                self._ready.put_nowait(job)
                continue
            make, job.make = job.make, None
            try:
                made = make()
            except Exception:  # a broken event must not stop the scheduler
                made = None
            if isinstance(made, bytes) and self._config.callback_url:
                self._queue_new(job, made)
                continue
            self.pending -= 1
            if made is None or isinstance(made, bytes) or not self._config.callback_url:
                continue
            number, item = made
            items = batches.setdefault(number.phone_number_id, (number, []))[1]
            items.append(item)
            if len(items) >= batch_max:
                self.pending += 1
                self._queue_new(_Job(None), serialise(status_body(number, items.copy())))
                items.clear()
        for number, items in batches.values():
            if items:
                self.pending += 1
                self._queue_new(_Job(None), serialise(status_body(number, items)))

    def _queue_new(self, job: _Job, body: bytes) -> None:
        assert self._ready is not None
        job.body = body
        job.signature = sign(self._config.app_secret, body)
        job.delivery_id = next(self._ids)
        self._ready.put_nowait(job)

    async def _deliver_loop(self) -> None:
        assert self._ready is not None
        while True:
            job = await self._ready.get()
            try:
                await self._deliver(job)
            except Exception:  # never let a worker die
                self.pending -= 1

    async def _deliver(self, job: _Job) -> None:
        config = self._config
        url = config.callback_url
        assert job.body is not None
        job.attempt += 1
        status: int | None = None
        error: str | None = None
        if url is None:
            self.pending -= 1
            return
        if config.webhook_down:
            error = "webhook endpoint down (fault)"
        else:
            try:
                response = await self._http.post(
                    url,
                    content=job.body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": job.signature,
                        "User-Agent": "facebookexternalua",
                    },
                    timeout=config.webhook_timeout_seconds,
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        self.log.append(
            {
                "delivery_id": job.delivery_id,
                "attempt": job.attempt,
                "status_code": status,
                "error": error,
                "ok": ok,
                "duplicate": job.duplicate,
                "at": time.time(),
                "body": job.body.decode(),
            }
        )
        if ok:
            self.pending -= 1
            if not job.duplicate and config.duplicate_rate > 0 and self._rng.random() < config.duplicate_rate:
                # Meta sometimes delivers the same event twice; the copy is signed identically.
                copy = _Job(None, job.body, job.signature, 0, True, job.delivery_id)
                self.pending += 1
                self._push(time.monotonic() + 0.01, copy)
            return
        if job.attempt >= config.webhook_max_attempts:
            self.pending -= 1  # given up, as Meta does after its retry period
            return
        backoff = min(
            config.webhook_retry_base_seconds * 2 ** (job.attempt - 1), config.webhook_retry_max_seconds
        )
        self._push(time.monotonic() + backoff, job)
