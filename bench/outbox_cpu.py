"""The outbox worker's CPU per sent message, in one process, against a baseline measured in the same run.

    .venv/bin/python bench/outbox_cpu.py [--transport mock|sim] [--database sqlite|postgresql]
                                          [--loop asyncio|uvloop] [--messages 4200] [--numbers 14]
                                          [--rate 80] [--runs 3]

Measures CPU time (time.process_time: this process, every thread), not wall-clock throughput, so a busy
machine changes the figures little. A small bench for one lever at a time; bench/send_throughput.py is
the full picture.

Setup: a fresh database (a temporary SQLite file, or `layanify_outbox_cpu_<pid>` on PostgreSQL, dropped
at the end), migrated; one workspace with `--numbers` connected numbers. Every run queues `--messages`
`hello_world` templates to distinct recipients, spread over the numbers (one through the product's
`queue_message` per number, the rest inserted as copies of those rows), then one OutboxWorker, with
the logging the `layanify worker` command configures (WARNING), sends them all, paced at `--rate` per
number as configured (the pacer's 3 % margin applies). CPU is counted from the worker's start until
every message is recorded `sent` (the database is polled every 0.25 s; that costs a few ms in all).
The first run pays for warming up (connections, caches): compare the median of the runs.
`--loop uvloop` runs everything on uvloop, as the in-process outbox of `layanify serve` does
(`layanify worker` runs on asyncio's own loop).

Transports:
- mock (default): the GraphClient over an httpx.MockTransport answering like Meta (unique wamids).
  Measures our code and httpx's client layer; no sockets.
- sim: a `layanify simulator` process over loopback (limits off), the GraphClient with its own
  connection pools as the worker builds it. Only this process's CPU is counted, not the simulator's.

Baseline (same transport, same run): a bare httpx loop posting the same body with the same token, as
many concurrent as the outbox's concurrency, through 32 clients of 4 connections (the Graph client's
pools before it had its own HTTP/1.1 transport): what the HTTP part alone cost with httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import uvloop
from pydantic import SecretStr
from sqlalchemy import func, insert, select, update

from layanify.accounts import service as accounts
from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.base import utcnow
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import Sessionmaker, WriteGate, unit_of_work
from layanify.messaging import service
from layanify.messaging.models import Message
from layanify.messaging.tasks import OutboxWorker
from layanify.numbers.models import NumberStatus, WhatsAppNumber
from layanify.numbers.service import set_access_token
from layanify.observability import configure_logging
from layanify.ratelimit import SendPacer, parse_rate, storage_for
from layanify.whatsapp.client import GraphClient

BIN = Path(sys.executable).parent
WABA_ID = "102290129340398"
VERSION = "v23.0"
KEYS = "bench:" + "B" * 43 + "="
TEMPLATE = {"type": "template", "name": "hello_world", "language": "en_US"}


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the Graph side -------------------------------------------------------------------------------


class MetaLike:
    """A MockTransport handler answering sends as Meta does, with a unique wamid each."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.sends = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sends += 1
        body = (
            b'{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],'
            b'"messages":[{"id":"wamid.BENCH%d","message_status":"accepted"}]}' % next(self._ids)
        )
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})


@contextlib.asynccontextmanager
async def simulator(tokens: dict[str, str]) -> AsyncIterator[str]:
    """A `layanify simulator` process, limits off, with the numbers registered; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAYANIFY_")}
    env.update(LAYANIFY_SIMULATOR_RATE_LIMIT_PER_SECOND="0", LAYANIFY_SIMULATOR_PAIR_RATE_BURST="0")
    process = await asyncio.create_subprocess_exec(
        str(BIN / "layanify"),
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/_sim/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the simulator did not start")
            template = {"waba_id": WABA_ID, "name": "hello_world", "language": "en_US", "body_text": "Hi"}
            (await client.post(f"{base}/_sim/templates", json=template)).raise_for_status()
            for i, (pnid, token) in enumerate(tokens.items()):
                number = {
                    "phone_number_id": pnid,
                    "waba_id": WABA_ID,
                    "token": token,
                    "display_phone_number": f"1555000{i:04d}",
                    "verified_name": f"Bench {i}",
                }
                (await client.post(f"{base}/_sim/numbers", json=number)).raise_for_status()
        yield base
    finally:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(process.wait(), 10)


# --- the database ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(kind: str, pg_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database URL; dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="outbox-cpu-") as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await migrate(url)
            yield url
        return
    name = f"layanify_outbox_cpu_{os.getpid()}"
    admin = await asyncpg.connect(f"{pg_dsn.rstrip('/')}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{pg_dsn.rstrip('/')}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    try:
        await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(f"{pg_dsn.rstrip('/')}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def migrate(url: str) -> None:
    engine = create_engine(Settings(database_url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def seed(sessionmaker: Sessionmaker, keyring: Keyring, count: int) -> tuple[int, dict[str, str]]:
    """A workspace with `count` connected numbers: (workspace id, {phone_number_id: token})."""
    tokens: dict[str, str] = {}
    async with unit_of_work(sessionmaker) as session:
        user, workspace, _ = await accounts.create_user(
            session,
            email="bench@example.com",
            password="bench-password",  # noqa: S106 - a throwaway database
            workspace_name="Bench",
        )
        for i in range(count):
            pnid, token = f"1065403522{i + 1:05d}", f"bench-token-{i + 1}"
            number = WhatsAppNumber(
                workspace_id=workspace.id,
                user_id=user.id,
                phone_number_id=pnid,
                waba_id=WABA_ID,
                number=f"1555000{i + 1:04d}",
                display_name=f"Bench {i + 1}",
                status=NumberStatus.APPROVED,
                connection_state="connected",
            )
            set_access_token(number, token, keyring)
            session.add(number)
            tokens[pnid] = token
        return workspace.id, tokens


async def queue(sessionmaker: Sessionmaker, workspace_id: int, total: int, run: int) -> None:
    """`total` templates to distinct recipients, round-robin over the numbers."""
    async with unit_of_work(sessionmaker) as session:
        number_ids = list(
            (await session.execute(select(WhatsAppNumber.id).order_by(WhatsAppNumber.id))).scalars()
        )
        seeds = [
            await service.queue_message(
                session,
                workspace_id=workspace_id,
                user_id=None,
                number_id=number_id,
                to=f"+62813{run:02d}{i:05d}",
                content=TEMPLATE,
                default_region="ID",
            )
            for i, number_id in enumerate(number_ids)
        ]
        now = utcnow()
        rows = [
            {
                "workspace_id": workspace_id,
                "conversation_id": seeds[i % len(seeds)].conversation_id,
                "number_id": seeds[i % len(seeds)].number_id,
                "recipient": f"62812{run:02d}{i:06d}",
                "direction": "outbound",
                "type": "template",
                "content": seeds[0].content,
                "status": "queued",
                "timestamp": now,
                "is_automated": False,
                "attempts": 0,
                "next_attempt_at": now + timedelta(milliseconds=i),  # the claim order: round-robin
                "created_at": now,
                "updated_at": now,
            }
            for i in range(len(seeds), total)
        ]
        if rows:
            await session.execute(insert(Message), rows)


async def unsent(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        stmt = select(func.count()).where(Message.status.in_(("queued", "sending")))
        return int((await session.execute(stmt)).scalar_one())


async def clear(sessionmaker: Sessionmaker) -> None:
    """Sent messages out of the way of the next run's (the outbox index only holds unsent ones anyway)."""
    async with unit_of_work(sessionmaker) as session:
        await session.execute(update(Message).values(status="read"))


# --- the runs -------------------------------------------------------------------------------------


async def outbox_run(
    settings: Settings, sessionmaker: Sessionmaker, keyring: Keyring, graph: GraphClient, total: int
) -> tuple[float, float]:
    """One worker sends everything queued: (CPU seconds, wall seconds)."""
    pacer = SendPacer(storage_for(None), recipient_rate=parse_rate(settings.pair_rate))
    worker = OutboxWorker(
        sessionmaker, settings, keyring, graph, pacer, gate=WriteGate(enabled=settings.is_sqlite)
    )
    stop = asyncio.Event()
    cpu, wall = time.process_time(), time.perf_counter()
    running = asyncio.create_task(worker.run(stop))
    try:
        while await unsent(sessionmaker):  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.25)
    finally:
        stop.set()
        await running
    return time.process_time() - cpu, time.perf_counter() - wall


async def baseline_run(
    clients: list[httpx.AsyncClient], url: str, token: str, total: int, concurrency: int
) -> float:
    """A bare httpx loop posting the send body, the clients in turn: CPU seconds for `total` requests."""
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "6281200000001",
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en_US"}},
        "biz_opaque_callback_data": "lyf:1",
    }
    headers = {"Authorization": f"Bearer {token}"}
    left = iter(range(total))
    turns = itertools.cycle(clients)

    async def poster() -> None:
        for _ in left:
            response = await next(turns).post(url, json=body, headers=headers)
            response.raise_for_status()
            response.json()

    cpu = time.process_time()
    await asyncio.gather(*(poster() for _ in range(concurrency)))
    return time.process_time() - cpu


async def main(args: argparse.Namespace) -> int:
    async with database(args.database, args.pg_dsn) as url:
        settings = Settings.model_validate(
            {
                "database_url": url,
                "env": "test",
                "encryption_keys": SecretStr(KEYS),
                "log_level": "WARNING",
                "rate_limit_per_second": args.rate,
                "outbox_poll_seconds": 0.05,
            }
        )
        configure_logging(settings)  # as `layanify worker` does: debug and info calls are filtered out
        keyring = Keyring.from_setting(KEYS)
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        workspace_id, tokens = await seed(sessionmaker, keyring, args.numbers)
        pnid, token = next(iter(tokens.items()))
        async with contextlib.AsyncExitStack() as stack:
            if args.transport == "mock":
                handler = MetaLike()
                base = "https://graph.example.test"
                http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
                graph = GraphClient(base_url=base, version=VERSION, http=http)
                bare = [httpx.AsyncClient(transport=httpx.MockTransport(MetaLike()))]
            else:
                base = await stack.enter_async_context(simulator(tokens))
                graph = GraphClient(base_url=base, version=VERSION, timeout=settings.graph_timeout_seconds)
                # Idle while the outbox runs: a 5 s keep-alive would race the simulator closing it.
                limits = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=1.0)
                bare = [httpx.AsyncClient(limits=limits) for _ in range(32)]
            stack.push_async_callback(graph.aclose)
            for client in bare:
                stack.push_async_callback(client.aclose)
            say(
                f"outbox CPU per message: {args.transport} transport, {args.database}, {args.loop} loop,"
                f" {args.messages} messages over {args.numbers} numbers at {args.rate}/s each,"
                f" outbox concurrency {settings.outbox_concurrency}"
            )
            send_url = f"{base}/{VERSION}/{pnid}/messages"
            await baseline_run(bare, send_url, token, 200, settings.outbox_concurrency)  # warm up
            results: list[float] = []
            baselines: list[float] = []
            for run in range(args.runs):
                base_cpu = await baseline_run(
                    bare, send_url, token, args.messages, settings.outbox_concurrency
                )
                baselines.append(base_cpu * 1000 / args.messages)
                await queue(sessionmaker, workspace_id, args.messages, run)
                cpu, wall = await outbox_run(settings, sessionmaker, keyring, graph, args.messages)
                await clear(sessionmaker)
                per_message = cpu * 1000 / args.messages
                results.append(per_message)
                say(
                    f"  run {run + 1}: outbox {per_message:.3f} ms CPU/message ({args.messages / wall:.0f}/s,"
                    f" {cpu / wall * 100:.0f}% of a core); baseline bare httpx post"
                    f" {base_cpu * 1000 / args.messages:.3f} ms CPU/request"
                )
            say(
                f"outbox: median {statistics.median(results):.3f} ms CPU/message (best {min(results):.3f});"
                f" baseline bare httpx: median {statistics.median(baselines):.3f} ms CPU/request"
            )
        await engine.dispose()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transport", choices=("mock", "sim"), default="mock")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--messages", type=int, default=4200)
    parser.add_argument("--numbers", type=int, default=14)
    parser.add_argument("--rate", type=int, default=80, help="per-number limit (messages/s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    sys.exit(uvloop.run(main(arguments)) if arguments.loop == "uvloop" else asyncio.run(main(arguments)))
