"""The webhook worker's CPU per processed event, in one process, against a baseline measured in the same run.

    .venv/bin/python bench/webhook_cpu.py [--database sqlite|postgresql] [--events 6000] [--runs 3]
                                          [--batch 100] [--statements] [--busy-loop 0.25]
                                          [--compare stock-driver|ungrouped]

A small bench for one lever at a time on the processing side (bench/webhook_ingest.py is the full
picture: HTTP, receipts and processing in their real processes). Measures CPU time (time.process_time:
this process, every thread, so aiosqlite's thread counts too) and wall-clock time.

Setup: a fresh migrated database (a temporary SQLite file, or `layanify_outbox_cpu_<pid>` on PostgreSQL,
dropped at the end), one owner and the seed's number, as `layanify serve` registers it. Every run stores
`--events` signed bodies from bench/payloads.py (the ingest bench's mix: single messages of every type,
statuses, batches, re-deliveries) as pending events through the product's EventWriter, then one
WebhookWorker — with a broker, as `layanify worker` builds it, and the logging it configures (WARNING) —
claims and processes them in batches of `--batch` until none is pending.

Baseline (same events, same run): the queue alone. The same claim and mark-processed statements in the
same batch sizes, nothing applied: what any worker of this queue pays before it looks at a payload. The
ratio says how much the processing itself costs on top of its floor.

`--busy-loop F` keeps the event loop busy F of the time while the worker runs (0.25 ms slices of
Python), as a server's webhooks do beside its in-process worker. `--compare` measures a lever in pairs:
every run stores two sets of events and processes one with the product's worker, the other with the
variant, in alternating order (machine drift hits both): `stock-driver` is SQLAlchemy's own aiosqlite
adapter instead of `db.sqlite_driver` (SQLite only), `ungrouped` a flush that writes only the columns
that changed (decision 37). The first pair warms up.
`--statements` prints the worker's ten costliest SQL statements of the last run (time from the driver
call to its return, thread hop included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import aiosqlite
from pydantic import SecretStr
from sqlalchemy import delete, event, func, select
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.ext.asyncio import AsyncEngine

from dbprobe import store_pending
from layanify.accounts import service as accounts
from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.base import utcnow
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.numbers import service as numbers
from layanify.observability import configure_logging
from layanify.realtime.broker import broker_for
from layanify.webhooks import batch, repository
from layanify.webhooks.models import EventStatus, WebhookEvent
from layanify.webhooks.tasks import WebhookWorker
from outbox_cpu import database
from payloads import PHONE_NUMBER_ID, WABA_ID, PayloadFactory

KEYS = "bench:" + "B" * 43 + "="
SECRET = "bench-app-secret"


def say(text: str) -> None:
    print(text, flush=True)


async def seed(sessionmaker: Sessionmaker, settings: Settings) -> None:
    """The owner and the seed's number, as `layanify user create` and `layanify serve` make them."""
    async with unit_of_work(sessionmaker) as session:
        await accounts.create_user(
            session,
            email="bench@example.com",
            password="bench-password",  # noqa: S106 - a throwaway database
            workspace_name="Bench",
        )
    async with unit_of_work(sessionmaker) as session:
        await numbers.register_seed_number(session, settings, Keyring.from_setting(KEYS))


async def store(settings: Settings, factory: PayloadFactory, count: int) -> int:
    """`count` pending events through the product's EventWriter; the new inbound messages they carry."""
    bodies: list[bytes] = []
    messages = 0
    for _ in range(count):
        request = factory.next()
        bodies.append(request.body)
        messages += request.new_messages
    await store_pending(settings.database_url, bodies)
    return messages


async def next_event_id(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.max(WebhookEvent.id)))).scalar_one() or 0) + 1


async def pending(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        query = select(func.count()).where(WebhookEvent.status == EventStatus.PENDING.value)
        return int((await session.execute(query)).scalar_one())


async def messages(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        return int((await session.execute(select(func.count()).select_from(Message))).scalar_one())


class StatementTimer:
    """Time per SQL statement (first 90 characters), from the cursor call to its return."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.on = False
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if self.on:
                entry = self.totals[" ".join(statement.split())[:90]]
                entry[0] += time.perf_counter() - conn.info.pop("bench_started")
                entry[1] += 1

    def report(self, events: int) -> None:
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][0])
        total = sum(seconds for seconds, _ in self.totals.values())
        say(f"  SQL: {total * 1000 / events:.3f} ms/event in {sum(n for _, n in self.totals.values())} calls")
        for statement, (seconds, calls) in ranked[:10]:
            say(f"    {seconds * 1000 / events:.3f} ms/event {int(calls):5d}× {statement}")


async def worker_run(worker: WebhookWorker) -> tuple[float, float]:
    """Process until nothing is due: (CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    while await worker.process_due_batch():
        pass
    return time.process_time() - cpu, time.perf_counter() - wall


async def queue_only_run(sessionmaker: Sessionmaker, batch: int) -> tuple[float, float]:
    """The baseline: claim and mark processed in batches, nothing applied."""
    cpu, wall = time.process_time(), time.perf_counter()
    while True:
        async with unit_of_work(sessionmaker) as session:
            events = await repository.claim_due(session, utcnow(), batch)
            if not events:
                break
            done = utcnow()
            await repository.mark_many(
                session,
                [
                    {
                        "event_id": event_id,
                        "status": EventStatus.PROCESSED.value,
                        "attempts": attempts + 1,
                        "processed_at": done,
                        "last_error": None,
                        "workspace_id": None,
                        "fields": "messages",
                        "summary": "",
                    }
                    for event_id, _, attempts, _ in events
                ],
            )
    return time.process_time() - cpu, time.perf_counter() - wall


class Busy:
    """Keeps the event loop busy `share` of the time, in 0.25 ms slices of Python (as a server's webhooks
    take the loop beside an in-process worker), while the worker runs."""

    SLICE = 0.00025

    def __init__(self, share: float) -> None:
        self._share = share
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        if self._share > 0:
            self._stop.clear()
            self._task = asyncio.create_task(self._run())

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        pause = self.SLICE * (1 - self._share) / self._share
        while not self._stop.is_set():
            started = time.perf_counter()
            while time.perf_counter() - started < self.SLICE:
                pass
            await asyncio.sleep(pause)


@contextlib.contextmanager
def ungrouped() -> Iterator[None]:
    """The worker as before decision 37: the flush writes only the columns that changed."""
    saved = batch.write_activity_together, batch.write_statuses_together
    batch.write_activity_together = batch.write_statuses_together = lambda _: None  # type: ignore[assignment]
    try:
        yield
    finally:
        batch.write_activity_together, batch.write_statuses_together = saved


async def main(args: argparse.Namespace) -> int:
    async with database(args.database, args.pg_dsn) as url:
        settings = Settings.model_validate(
            {
                "database_url": url,
                "env": "test",
                "encryption_keys": SecretStr(KEYS),
                "log_level": "WARNING",
                "worker_batch_size": args.batch,
                "worker_batch_budget_ms": 0,  # full batches, as a separate worker draining a backlog
                "whatsapp_app_secret": SecretStr(SECRET),
                "whatsapp_phone_number_id": PHONE_NUMBER_ID,
                "whatsapp_business_account_id": WABA_ID,
                "whatsapp_access_token": SecretStr("bench-access-token"),
                "whatsapp_verify_token": SecretStr("bench-verify-token"),
            }
        )
        configure_logging(settings)  # as `layanify worker` does: debug and info calls are filtered out
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        timer = StatementTimer(engine)
        await seed(sessionmaker, settings)
        broker = broker_for(settings)
        worker = WebhookWorker(sessionmaker, settings, name="bench", broker=broker)
        other_engine = None
        variant = contextlib.nullcontext
        other = worker
        if args.compare == "stock-driver":
            if args.database != "sqlite":
                raise SystemExit("--compare stock-driver is a SQLite comparison")
            other_engine = create_engine(settings, module=AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3))
            other = WebhookWorker(create_sessionmaker(other_engine), settings, name="stock", broker=broker)
        elif args.compare == "ungrouped":
            variant = ungrouped
        factory = PayloadFactory(SECRET, seed=11)
        busy = Busy(args.busy_loop)
        say(
            f"webhook worker CPU per event: {args.database}, {args.events} events a run in batches of"
            f" {args.batch}, {args.runs} runs (the first warms up)"
            + (f", event loop kept {args.busy_loop:.0%} busy" if args.busy_loop else "")
            + (f", each run against {args.compare} in alternating order" if args.compare else "")
        )

        async def one_run(
            chosen: WebhookWorker, context: Callable[[], Any], *, statements: bool, floor_first: bool
        ) -> tuple[float, float, int, int, tuple[float, float]]:
            """Store `--events` events and process them: CPU s, wall s, messages stored, events left
            pending, and the queue alone's CPU and wall s (with `floor_first`, run over the same events
            before the worker; else zeros)."""
            first_id = await next_event_id(sessionmaker)
            await store(settings, factory, args.events)
            queue_alone = (0.0, 0.0)
            if floor_first:
                queue_alone = await queue_only_run(sessionmaker, args.batch)
                async with unit_of_work(sessionmaker) as session:  # the same events again, pending
                    await session.execute(
                        WebhookEvent.__table__.update()
                        .where(WebhookEvent.id >= first_id)
                        .values(status=EventStatus.PENDING.value, attempts=0)
                    )
            before = await messages(sessionmaker)
            timer.on = statements
            with context():
                async with busy:
                    cpu, wall = await worker_run(chosen)
            timer.on = False
            stored = await messages(sessionmaker) - before
            left = await pending(sessionmaker)
            async with unit_of_work(sessionmaker) as session:
                await session.execute(delete(WebhookEvent).where(WebhookEvent.id >= first_id))
            return cpu, wall, stored, left, queue_alone

        per_event: list[float] = []
        floor: list[float] = []
        pairs: list[tuple[float, float, float, float]] = []  # (ms, events/s) product, then the variant
        for run in range(args.runs):
            last = run == args.runs - 1
            if args.compare:
                order = [("product", worker, contextlib.nullcontext), (args.compare, other, variant)]
                results = {}
                for name, chosen, context in order if run % 2 == 0 else order[::-1]:
                    statements = args.statements and last and name == "product"
                    cpu, wall, *_ = await one_run(chosen, context, statements=statements, floor_first=False)
                    results[name] = (cpu * 1000 / args.events, args.events / wall)
                    ms, rate = results[name]
                    say(f"  run {run + 1} {name}: {ms:.3f} ms CPU/event, {rate:.0f} events/s")
                if run:
                    pairs.append((*results["product"], *results[args.compare]))
                continue
            cpu, wall, stored, left, (base_cpu, base_wall) = await one_run(
                worker, contextlib.nullcontext, statements=args.statements and last, floor_first=True
            )
            ms, base_ms = cpu * 1000 / args.events, base_cpu * 1000 / args.events
            if run:
                per_event.append(ms)
                floor.append(base_ms)
            say(
                f"  run {run + 1}: worker {ms:.3f} ms CPU/event, {args.events / wall:.0f} events/s"
                f" ({stored / wall:.0f} new messages/s, {cpu / wall * 100:.0f}% of a core, {left} left);"
                f" queue alone {base_ms:.3f} ms CPU/event ({args.events / base_wall:.0f} events/s)"
            )
        if per_event:
            median, base = statistics.median(per_event), statistics.median(floor)
            say(
                f"worker: median {median:.3f} ms CPU/event = {1000 / median:.0f} events/s a core;"
                f" queue alone: median {base:.3f} ms ({median / base:.1f}× the queue's floor)"
            )
        if pairs:
            cheaper = sum(1 for ms, _, other_ms, _ in pairs if ms < other_ms)
            faster = sum(1 for _, rate, _, other_rate in pairs if rate > other_rate)
            medians = [statistics.median(pair[i] for pair in pairs) for i in range(4)]
            say(
                f"product: median {medians[0]:.3f} ms CPU/event, {medians[1]:.0f} events/s;"
                f" {args.compare}: median {medians[2]:.3f} ms, {medians[3]:.0f} events/s; the product used"
                f" less CPU in {cheaper} and was faster in {faster} of {len(pairs)} pairs"
            )
        if args.statements:
            timer.report(args.events)
        await broker.aclose()
        if other_engine is not None:
            await other_engine.dispose()
        await engine.dispose()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--statements", action="store_true")
    parser.add_argument(
        "--compare",
        choices=("stock-driver", "ungrouped"),
        help="alternate every run with SQLAlchemy's own aiosqlite adapter (SQLite) or with a flush that"
        " writes only changed columns (decision 37); the first pair warms up",
    )
    parser.add_argument("--busy-loop", type=float, default=0.0, help="keep the event loop this busy (0-0.9)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
