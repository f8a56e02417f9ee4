"""Inbox page benchmark: the first and a deep page of every filter, and searches, at 100k conversations.

    .venv/bin/python bench/inbox_pages.py [--database sqlite|postgresql|both] [--repeats N]

Under 2 minutes for both databases. Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust; see
--pg-dsn) for the postgresql part. The figures are reported, never enforced: the exit status is 0.

Method
------
Each database is fresh: a SQLite file in a temporary directory, or a PostgreSQL database
`layanify_bench_inbox_<pid>` (dropped at the end), migrated to head. Two workspaces are bulk-INSERTed
(Core executemany, not the API): the measured one with 100,000 conversations and the baseline one with
1,000, built by the same generator — each conversation with its contact and one customer message;
30% closed; a third assigned to the timed user, a third to another agent, a third unassigned;
activity spread over 30 days with ties on the same second; 1% of messages say "ukuran XL".
PostgreSQL is ANALYZEd after the load (as autovacuum would); SQLite is left as an app leaves it.

Each case calls `conversations.service.list_conversations` — the code the API and the web inbox run —
in its own session: 3 warm-up calls, then `--repeats` timed ones (the no-match search: 1, then 3).
p50 and p99 are of the timed calls (with 50 repeats, p99 is the slowest one: read p50 first on a busy
machine). A deep page starts from the cursor after row 50,000 of its filter, or before its last full
page when the filter holds fewer (so at 1k, the last page as well).
The ratio is 100k p50 / 1k p50: near 1 means the page costs the same however big the inbox is.
After the table, the plan of each deep page (EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.accounts.models import Membership, User, Workspace
from layanify.config import Settings
from layanify.contacts.models import Contact
from layanify.conversations.models import Conversation
from layanify.conversations.service import list_conversations
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import Sessionmaker
from layanify.db.sql import table_of
from layanify.messaging.models import Message
from layanify.numbers.models import WhatsAppNumber
from layanify.pagination import encode_cursor

BIG, SMALL = 100_000, 1_000
DEEP = 50_000
PAGE = 50
FILTERS = ("all", "mine", "unassigned", "open", "closed")
SEARCHES = (("search text", "ukuran xl"), ("search number", "+62 812-0004"), ("search name", "siti"))
# A search nothing matches reads every conversation of the workspace: the worst case, timed fewer times.
MISS = ("search, no match", "tidak ditemukan")
MISS_REPEATS = 3
FIRST = ("Budi", "Siti", "Andi", "Dewi", "Rina", "Agus", "Wati", "Joko", "Putri", "Eko", "Sri", "Bayu")
LAST = ("Santoso", "Rahma", "Wijaya", "Saputra", "Lestari", "Hidayat", "Kusuma", "Pratama", "Nugroho")
WORDS = ("halo", "pesanan", "sudah", "dikirim", "berapa", "harga", "kaos", "warna", "merah", "stok", "ada")
T0 = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass
class Tenant:
    """A seeded workspace and the user whose "mine" is timed."""

    workspace_id: int
    user_id: int
    size: int


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def _insert(engine: AsyncEngine, model: Any, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as connection:
        for chunk in _chunks(rows):
            await connection.execute(table_of(model).insert(), chunk)


async def seed(engine: AsyncEngine, slot: int, size: int, first_id: int) -> Tenant:
    """A workspace (ids from `first_id`) with `size` conversations, contacts and messages."""
    rng = random.Random(slot)
    now = datetime.now(UTC)
    stamp = {"created_at": now, "updated_at": now}
    user_a, user_b = slot * 2 + 1, slot * 2 + 2
    await _insert(
        engine, Workspace, [{"id": slot, "name": f"Bench {slot}", "timezone": "Asia/Jakarta", **stamp}]
    )
    users = [
        {"id": u, "email": f"agent{u}@bench.example", "name": f"Agent {u}", "password_hash": "x", **stamp}
        for u in (user_a, user_b)
    ]
    await _insert(engine, User, users)
    memberships = [{"workspace_id": slot, "user_id": u, "role": "agent", **stamp} for u in (user_a, user_b)]
    await _insert(engine, Membership, memberships)
    number = {
        "id": slot,
        "workspace_id": slot,
        "phone_number_id": f"bench{slot}",
        "number": "15550000000",
        "display_name": "Bench",
        "status": "approved",
        "connection_state": "connected",
        **stamp,
    }
    await _insert(engine, WhatsAppNumber, [number])
    contacts, conversations, messages = [], [], []
    for i in range(size):
        row_id = first_id + i
        at = T0 + timedelta(seconds=rng.randrange(30 * 86400))
        closed = rng.random() < 0.3
        text = " ".join(rng.choices(WORDS, k=5)) + (" ukuran XL" if rng.random() < 0.01 else "")
        contacts.append(
            {
                "id": row_id,
                "workspace_id": slot,
                "wa_id": f"62812{row_id:08d}",
                "tags": [],
                "profile_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "marketing_opt_out": False,
                **stamp,
            }
        )
        conversations.append(
            {
                "id": row_id,
                "workspace_id": slot,
                "number_id": slot,
                "contact_id": row_id,
                "status": "closed" if closed else "open",
                "closed_at": at if closed else None,
                "assigned_user_id": (user_a, user_b, None)[i % 3],
                "last_message_at": at,
                "last_inbound_at": at,
                "window_expires_at": at + timedelta(hours=24),
                "last_message_preview": text[:200],
                "unread_count": 1,
                "auto_reply_enabled": True,
                **stamp,
            }
        )
        messages.append(
            {
                "id": row_id,
                "workspace_id": slot,
                "conversation_id": row_id,
                "wamid": f"wamid.b{row_id}",
                "direction": "inbound",
                "type": "text",
                "content": {"type": "text", "text": text},
                "status": "received",
                "timestamp": at,
                "is_automated": False,
                "attempts": 0,
                **stamp,
            }
        )
    await _insert(engine, Contact, contacts)
    await _insert(engine, Conversation, conversations)
    await _insert(engine, Message, messages)
    return Tenant(slot, user_a, size)


async def deep_cursor(sessionmaker: Sessionmaker, tenant: Tenant, filter: str) -> tuple[str, int]:
    """The cursor after row 50,000 of the filter (after its last full page when it holds fewer)."""
    c = Conversation
    stmt = select(c.last_message_at, c.id).where(
        c.workspace_id == tenant.workspace_id, c.last_message_at.is_not(None)
    )
    if filter in ("open", "closed"):
        stmt = stmt.where(c.status == filter)
    elif filter == "mine":
        stmt = stmt.where(c.assigned_user_id == tenant.user_id)
    elif filter == "unassigned":
        stmt = stmt.where(c.assigned_user_id.is_(None))
    async with sessionmaker() as session:
        count = len((await session.execute(stmt)).all())
        offset = min(DEEP, count - PAGE)
        row = (
            await session.execute(
                stmt.order_by(c.last_message_at.desc(), c.id.desc()).offset(offset - 1).limit(1)
            )
        ).one()
    return encode_cursor(row[0], row[1]), offset


async def timed(
    sessionmaker: Sessionmaker, tenant: Tenant, repeats: int, warmup: int = 3, **params: Any
) -> tuple[float, float, int]:
    """p50 and p99 in milliseconds of one listing call, and how many rows it answered."""
    samples: list[float] = []
    rows = 0
    for run in range(warmup + repeats):
        started = time.perf_counter()
        async with sessionmaker() as session:
            page = await list_conversations(
                session, tenant.workspace_id, user_id=tenant.user_id, limit=PAGE, **params
            )
        if run >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
        rows = len(page.data)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99, rows


async def plan(engine: AsyncEngine, sessionmaker: Sessionmaker, tenant: Tenant, **params: Any) -> list[str]:
    """The database's plan for the listing query these parameters run."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM conversations" in statement:
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with sessionmaker() as session:
            await list_conversations(
                session, tenant.workspace_id, user_id=tenant.user_id, limit=PAGE, **params
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    prefix = "EXPLAIN " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql(prefix + statement, parameters)
        return [str(row[-1]) for row in result.all()]


async def bench(name: str, url: str, repeats: int) -> None:
    """Seed one database, time every case at 100k and 1k conversations, print the table and plans."""
    engine = create_engine(Settings(database_url=url))
    sessionmaker = create_sessionmaker(engine)
    try:
        started = time.perf_counter()
        await upgrade(engine)
        big = await seed(engine, 1, BIG, 1)
        small = await seed(engine, 2, SMALL, BIG + 1)
        if name == "postgresql":
            async with engine.begin() as connection:  # committed: ANALYZE in a rolled-back block is undone
                await connection.exec_driver_sql("ANALYZE")
        print(
            f"\n== {name}: seeded {BIG:,} + {SMALL:,} conversations in {time.perf_counter() - started:.1f} s"
        )
        print(f"{'case':<26}{'100k p50':>10}{'p99':>8}{'1k p50':>9}{'p99':>8}{'ratio':>7}  rows")
        cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for flt in FILTERS:
            cases.append((f"{flt} first page", {"filter": flt}, {"filter": flt}))
            (big_cursor, big_at), (small_cursor, _) = [
                await deep_cursor(sessionmaker, t, flt) for t in (big, small)
            ]
            label = f"{flt} deep (after {big_at // 1000}k)"
            cases.append(
                (label, {"filter": flt, "cursor": big_cursor}, {"filter": flt, "cursor": small_cursor})
            )
        cases += [(label, {"q": q}, {"q": q}) for label, q in SEARCHES]
        cases.append((f"{MISS[0]} ({MISS_REPEATS}x)", {"q": MISS[1]}, {"q": MISS[1]}))
        for label, big_params, small_params in cases:
            miss = big_params.get("q") == MISS[1]
            times, warmup = (MISS_REPEATS, 1) if miss else (repeats, 3)
            b50, b99, rows = await timed(sessionmaker, big, times, warmup, **big_params)
            s50, s99, _ = await timed(sessionmaker, small, times, warmup, **small_params)
            print(f"{label:<26}{b50:>8.2f}ms{b99:>8.2f}{s50:>9.2f}{s99:>8.2f}{b50 / s50:>7.2f}  {rows}")
        print(f"-- plans of the deep pages at {BIG // 1000}k ({name})")
        for label, big_params, _ in cases:
            if "cursor" in big_params or label.startswith("search text"):
                lines = await plan(engine, sessionmaker, big, **big_params)
                print(f"{label}:\n    " + "\n    ".join(line.strip() for line in lines[:8]))
    finally:
        await engine.dispose()


async def run_postgresql(dsn: str, repeats: int) -> None:
    """Bench a fresh PostgreSQL database, dropped afterwards whatever happens."""
    database = f"layanify_bench_inbox_{os.getpid()}"
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await bench("postgresql", f"{base}/{database}", repeats)
    finally:
        admin = await asyncpg.connect(dsn, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


async def main() -> None:
    """Parse the options and bench each database asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="layanify-bench-inbox-") as directory:
            await bench("sqlite", f"sqlite+aiosqlite:///{Path(directory) / 'inbox.db'}", args.repeats)
    if args.database in ("postgresql", "both"):
        await run_postgresql(args.pg_dsn, args.repeats)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
