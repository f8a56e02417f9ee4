"""Sending throughput: messages/s through the outbox to the simulator, under Meta's per-number limit.

    .venv/bin/python bench/send_throughput.py [--quick] [--database sqlite|postgresql|both] [--keep]

About 4 minutes (--quick: under 2). Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust; see
--pg-dsn) for the postgresql part, Redis at 127.0.0.1:6379 (db 13, see --redis-url) for the shared pacer
of several worker processes, and Debian's wrk. Prints each phase as it goes, then a summary, a ratio
against a baseline measured in the same run, and PASS/FAIL for the issue's goals (reported, never
enforced: the exit status is 0). Writes bench/results/send_throughput-<database>.json.

Method
------
Everything runs on this machine over loopback, in separate processes: the Cloud API simulator (one
process, its own per-number limit at 80/s: a token bucket of 80 refilled at 80/s, so a product that went
faster would get 130429 answers), the product (`layanify serve`), outbox worker processes, wrk as the
API client, and this script, which only orchestrates and reads the database through its own connection.

Setup per database (a fresh PostgreSQL database `layanify_bench_<pid>`, dropped at the end, or a SQLite
file in a temporary directory): migrate, an owner and an API key (the CLI), 15 numbers registered in the
simulator (`POST /_sim/numbers`, plus the `hello_world` template of their WABA) and in the product
(`POST /api/v1/numbers`, then `POST /api/v1/numbers/{id}/test`, which marks them connected).

Every message is a `hello_world` template (no 24-hour window needed) to a distinct recipient (so the
pair rate never applies), queued through `POST /api/v1/messages` by wrk (bench/send_queue.lua), the
numbers taken in turn.

Phases:
0. Baseline: the simulator's raw send capacity, limits off (bench/simulator_throughput.py's app and
   wrk script), wrk with 64 connections (the outbox's default concurrency): what the machine allows
   when nothing but the simulator is in the way.
1. single: one number. N messages are queued with the server's workers off (`serve --no-workers`), so
   queueing is not measured as sending; then the workers start and the script polls the database until
   every message is `sent` (or failed). Goal: sustain the per-number limit (>= 0.95 x 80/s: the pacer
   keeps 2 % below the limit on purpose).
2. multi: 14 numbers (14 x 78 = 1,092/s is the most the pacer lets through), same method; on
   PostgreSQL with one and with two worker processes (two share the pacer through Redis), on SQLite
   with the server's in-process workers. Goal: >= 1,000 messages/s across numbers on PostgreSQL.
3. steady: the workers run while wrk queues at a fixed rate (1,000/s on PostgreSQL, 400/s on SQLite)
   across the 14 numbers; queue-to-sent latency (`sent_at - timestamp`) of those messages, p50/p99.
   This is the latency a user sees; in phases 1-2 it mostly measures how long the backlog was.

messages/s is (sent - 1) / (last sent_at - first sent_at), from the product's own `sent_at` (set when
Meta accepted the send); the drain's wall time from starting the workers is printed too.

"Never exceeded a configured limit" is checked on the simulator's side: its request log (cleared before
every phase) gives the arrival time of every send per phone_number_id; the highest count of accepted
sends in any 1 s sliding window must stay <= 80 per number, and no 130429 (throughput) or 131056 (pair
rate) answer may occur.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import simulator_throughput
from procstat import CpuMeter
from webhook_ingest import Service, ensure_wrk, free_port, percentile, run_cli, say, source_fingerprint

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent
LAYANIFY = str(BIN / "layanify")
LUA = BENCH_DIR / "send_queue.lua"
RESULTS = BENCH_DIR / "results"
GRAPH_VERSION = "v23.0"
WABA_ID = "102290129340777"
from layanify.ratelimit import paced_rate  # noqa: E402 - the bench runs from the repo

LIMIT = 80  # Meta's default per-number throughput, the product's default and the simulator's limit here
PACED = paced_rate(LIMIT)  # what the product's pacer lets through
MULTI_NUMBERS = 14
SUSTAIN_GOAL = 0.95 * LIMIT
ACROSS_GOAL = 1000.0
THROTTLE_CODES = {130429, 131056, 80007}
API_SAMPLE_PER_NUMBER = 30  # messages per number queued through POST /api/v1/messages in each backlog


@dataclass(frozen=True)
class Plan:
    """Sizes of the phases."""

    single_messages: int
    multi_messages: int
    sqlite_multi_messages: int
    steady_seconds: float
    steady_rate_pg: float
    steady_rate_sqlite: float
    steady_api_rate: float  # what POST /api/v1/messages sustains here (it is the slow part)
    baseline_seconds: int


FULL = Plan(2400, 20_000, 8_000, 20, 1000, 400, 25, 5)
QUICK = Plan(800, 6_000, 3_000, 8, 1000, 400, 25, 3)


# --- the database, read from outside --------------------------------------------------------------


@dataclass
class Row:
    """One outbound message as the bench reads it."""

    id: int
    number_id: int
    status: str
    queued_at: float
    sent_at: float | None
    attempts: int


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


class Reader:
    """Read-only queries on `messages` (asyncpg, or sqlite3 in a thread)."""

    def __init__(self, pg_dsn: str | None, sqlite_path: Path | None) -> None:
        self._pg_dsn = pg_dsn
        self._sqlite_path = sqlite_path
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """Connect."""
        if self._pg_dsn:
            self._pool = await asyncpg.create_pool(self._pg_dsn, min_size=1, max_size=2)

    async def close(self) -> None:
        """Disconnect."""
        if self._pool is not None:
            await self._pool.close()

    async def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._pool is not None:
            return [tuple(r) for r in await self._pool.fetch(sql, *args)]
        assert self._sqlite_path is not None
        lite = sql
        for i in range(len(args), 0, -1):
            lite = lite.replace(f"${i}", "?")

        def run() -> list[tuple[Any, ...]]:
            connection = sqlite3.connect(f"file:{self._sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                return [tuple(r) for r in connection.execute(lite, args).fetchall()]
            finally:
                connection.close()

        return await asyncio.to_thread(run)

    async def samples(self, after_id: int) -> dict[int, int]:
        """number_id -> the first outbound message above after_id (the API-queued sample to clone)."""
        rows = await self._fetch(
            "SELECT number_id, min(id) FROM messages WHERE id > $1 AND direction = 'outbound'"
            " GROUP BY number_id",
            after_id,
        )
        return {int(number_id): int(message_id) for number_id, message_id in rows}

    async def clone(self, templates: list[int], count: int, prefix: str, start: int = 0) -> None:
        """Insert `count` queued copies of the template messages (in turn), each to its own recipient.

        Exactly the row `queue_message` stores (same workspace, conversation, number, content), minus
        the HTTP request and the contact/conversation upserts: the API's queueing is too slow on this
        machine to build a large backlog (see the printed API queue rate), and the outbox only reads
        `messages` and `whatsapp_numbers`.
        """
        if self._pool is not None:
            await self._pool.execute(
                "INSERT INTO messages (workspace_id, conversation_id, direction, type, content, status,"
                ' "timestamp", is_automated, number_id, recipient, sent_by_user_id, attempts,'
                " next_attempt_at, created_at, updated_at)"
                " SELECT t.workspace_id, t.conversation_id, t.direction, t.type, t.content, 'queued',"
                " clock_timestamp(), t.is_automated, t.number_id, $2 || lpad(g::text, 6, '0'),"
                " t.sent_by_user_id, 0, clock_timestamp(), clock_timestamp(), clock_timestamp()"
                " FROM generate_series($3::bigint, $3::bigint + $4 - 1) g"
                " JOIN messages t ON t.id = ($1::bigint[])[(g % cardinality($1::bigint[])) + 1] ORDER BY g",
                templates,
                prefix,
                start,
                count,
            )
            return
        assert self._sqlite_path is not None

        def run() -> None:
            connection = sqlite3.connect(self._sqlite_path, timeout=30, isolation_level=None)
            try:
                found = connection.execute(
                    "SELECT id, workspace_id, conversation_id, direction, type, content, is_automated,"
                    " number_id, sent_by_user_id FROM messages WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(templates),),
                ).fetchall()
                by_id = {row[0]: row[1:] for row in found}
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                values = []
                for g in range(start, start + count):
                    ws, conv, direction, kind, content, auto, number, user = by_id[
                        templates[g % len(templates)]
                    ]
                    values.append(
                        (ws, conv, direction, kind, content, now, auto, number, f"{prefix}{g:06d}", user, now)
                    )
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO messages (workspace_id, conversation_id, direction, type, content, status,"
                    ' "timestamp", is_automated, number_id, recipient, sent_by_user_id, attempts,'
                    " next_attempt_at, created_at, updated_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?9, ?10, 0, ?11, ?11, ?11)",
                    values,
                )
                connection.execute("COMMIT")
            finally:
                connection.close()

        await asyncio.to_thread(run)

    async def discard_queued(self) -> None:
        """Mark what an undrained phase left queued as failed, so that the next phase starts empty."""
        sql = (
            "UPDATE messages SET status = 'failed', error_title = 'bench: discarded' WHERE status = 'queued'"
        )
        if self._pool is not None:
            await self._pool.execute(sql)
            return
        assert self._sqlite_path is not None

        def run() -> None:
            connection = sqlite3.connect(self._sqlite_path, timeout=30, isolation_level=None)
            try:
                connection.execute(sql)
            finally:
                connection.close()

        await asyncio.to_thread(run)

    async def max_id(self) -> int:
        """The highest message id (0 when empty)."""
        rows = await self._fetch("SELECT coalesce(max(id), 0) FROM messages")
        return int(rows[0][0])

    async def counts(self, after_id: int) -> dict[str, int]:
        """Outbound messages with id > after_id, by status."""
        rows = await self._fetch(
            "SELECT status, count(*) FROM messages WHERE id > $1 AND direction = 'outbound' GROUP BY status",
            after_id,
        )
        return {str(status): int(n) for status, n in rows}

    async def rows(self, after_id: int) -> list[Row]:
        """Every outbound message with id > after_id."""
        rows = await self._fetch(
            "SELECT id, number_id, status, timestamp, sent_at, attempts FROM messages"
            " WHERE id > $1 AND direction = 'outbound' ORDER BY id",
            after_id,
        )
        return [
            Row(int(r[0]), int(r[1]), str(r[2]), _epoch(r[3]) or 0.0, _epoch(r[4]), int(r[5])) for r in rows
        ]


# --- the simulator's view -------------------------------------------------------------------------


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The highest number of events in any half-open window [t, t + width)."""
    ordered = sorted(times)
    best = low = 0
    for high, at in enumerate(ordered):
        while at - ordered[low] >= width:
            low += 1
        best = max(best, high - low + 1)
    return best


def simulator_view(log: list[dict[str, Any]], pnid_to_number: dict[str, int]) -> dict[str, Any]:
    """Per-number accepted sends, their highest 1 s window and the throttling answers (request log)."""
    accepted: dict[str, list[float]] = {}
    attempts: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    throttled = 0
    for record in log:
        if record["method"] != "POST" or not record["path"].endswith("/messages"):
            continue
        pnid = record["path"].strip("/").split("/")[-2]
        attempts.setdefault(pnid, []).append(record["time"])
        if record["status"] == 200:
            accepted.setdefault(pnid, []).append(record["time"])
            continue
        code = (record.get("response") or {}).get("error", {}).get("code")
        errors[str(code)] = errors.get(str(code), 0) + 1
        if code in THROTTLE_CODES:
            throttled += 1
    per_number = {}
    for pnid, times in accepted.items():
        span = max(times) - min(times)
        per_number[pnid] = {
            "number_id": pnid_to_number.get(pnid),
            "accepted": len(times),
            "max_1s_window": max_in_window(times),
            "max_1s_window_attempts": max_in_window(attempts.get(pnid, [])),
            "rate_per_s": round((len(times) - 1) / span, 1) if span > 0 else 0.0,
        }
    return {
        "requests": sum(len(t) for t in attempts.values()),
        "accepted": sum(len(t) for t in accepted.values()),
        "errors_by_code": errors,
        "throttled": throttled,
        "max_1s_window": max((n["max_1s_window"] for n in per_number.values()), default=0),
        "per_number": per_number,
    }


# --- one database ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase."""

    name: str
    database: str
    workers: str
    numbers: int
    queued: int = 0
    queue_seconds: float = 0.0
    queue_rate: float = 0.0
    queue_non_2xx: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    drained: bool = False
    drain_wall_seconds: float = 0.0
    send_seconds: float = 0.0
    messages_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    target_rate: float | None = None
    simulator: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    profile: str | None = None
    api_queue: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One printable line."""
        lat = self.latency_ms
        return (
            f"  {self.database:<10} {self.name:<22} {self.workers:<22} {self.sent:>6} sent"
            f" {self.send_seconds:6.1f}s {self.messages_per_s:7.1f}/s  p50={lat.get('p50', 0):7.0f}ms"
            f" p99={lat.get('p99', 0):7.0f}ms  max1s/number={self.simulator.get('max_1s_window', 0)}"
            f" (limit {LIMIT})  throttled={self.simulator.get('throttled', 0)} failed={self.failed}"
        )


class DatabaseBench:
    """All phases on one fresh database."""

    def __init__(
        self, args: argparse.Namespace, plan: Plan, kind: str, workdir: Path, meter: CpuMeter
    ) -> None:
        self.args = args
        self.plan = plan
        self.kind = kind
        self.workdir = workdir
        self.meter = meter
        self.wrk = ensure_wrk()
        self.logs = workdir / kind
        self.logs.mkdir(exist_ok=True)
        if kind == "postgresql":
            self.db_name = f"layanify_bench_{os.getpid()}"
            self.pg_dsn: str | None = f"{args.pg_dsn.rstrip('/')}/{self.db_name}"
            self.url = "postgresql+asyncpg://" + self.pg_dsn.split("://", 1)[1]
            self.sqlite_path: Path | None = None
        else:
            self.pg_dsn = None
            self.sqlite_path = workdir / "send-bench.db"
            self.url = f"sqlite+aiosqlite:///{self.sqlite_path}"
        self.sim_port = free_port()
        self.port = free_port()
        self.api_key = ""
        self.numbers: list[tuple[int, str]] = []  # (product id, phone_number_id)
        self.server: Service | None = None
        self.server_workers = False
        self.simulator: Service | None = None
        self.reader = Reader(self.pg_dsn, self.sqlite_path)
        self.prefix_counter = 10 + (0 if kind == "sqlite" else 40)

    # --- environment and processes

    def env(self, *, redis: bool = False) -> dict[str, str]:
        """The product's environment (server, workers, CLI)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAYANIFY_", "WHATSAPP_"))}
        env.update(
            LAYANIFY_DATABASE_URL=self.url,
            LAYANIFY_LOG_LEVEL="WARNING",
            LAYANIFY_GRAPH_API_BASE_URL=f"http://127.0.0.1:{self.sim_port}",
            LAYANIFY_GRAPH_API_VERSION=GRAPH_VERSION,
            LAYANIFY_CONNECTION_CHECK_SECONDS="0",
        )
        if redis:
            env["LAYANIFY_REDIS_URL"] = self.args.redis_url
        return env

    async def start_simulator(self) -> None:
        """The simulator, limits at Meta's defaults (80/s per number), no webhooks."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAYANIFY_SIMULATOR_")}
        env.update(
            LAYANIFY_SIMULATOR_RATE_LIMIT_PER_SECOND=str(LIMIT),
            LAYANIFY_SIMULATOR_REQUEST_LOG_LIMIT="500000",
        )
        argv = [LAYANIFY, "simulator", "--host", "127.0.0.1", "--port", str(self.sim_port)]
        self.simulator = Service("simulator", argv, env, ROOT, self.logs / "simulator.log")
        await self.simulator.start()
        await self.simulator.wait_ready(f"http://127.0.0.1:{self.sim_port}/_sim/health")
        self.meter.track("simulator", self.simulator.pid)
        say(f"  simulator on :{self.sim_port} (layanify simulator)")

    async def start_server(self, *, workers: bool) -> None:
        """`layanify serve`, with or without its in-process workers."""
        if self.server is not None:
            await self.server.stop()
        argv = [LAYANIFY, "serve", "--port", str(self.port)]
        if not workers:
            argv.append("--no-workers")
        self.server = Service("server", argv, self.env(), ROOT, self.logs / "server.log")
        await self.server.start()
        await self.server.wait_ready(f"http://127.0.0.1:{self.port}/healthz", any_status=True)
        self.server_workers = workers
        self.meter.track("server", self.server.pid)

    def worker_argv(self) -> list[str]:
        """A worker process: `layanify worker` (webhooks, outbox, media)."""
        return [LAYANIFY, "worker"]

    # --- setup

    async def setup(self) -> None:
        """Fresh database, owner, API key, numbers in the simulator and the product."""
        if self.pg_dsn:
            admin = await asyncpg.connect(f"{self.args.pg_dsn.rstrip('/')}/postgres")
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{self.db_name}"')
            finally:
                await admin.close()
        env = self.env()
        await run_cli(["migrate"], env, ROOT)
        email = "bench@example.com"
        await run_cli(
            ["user", "create", "--email", email, "--password", "bench-password", "--workspace", "Bench"],
            env,
            ROOT,
        )
        self.api_key = (
            (await run_cli(["apikey", "create", "--email", email], env, ROOT)).strip().splitlines()[0]
        )
        await self.reader.open()
        await self.start_simulator()
        await self.start_server(workers=False)
        sim = f"http://127.0.0.1:{self.sim_port}/_sim"
        api = f"http://127.0.0.1:{self.port}/api/v1"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(timeout=30) as client:
            template = {
                "waba_id": WABA_ID,
                "name": "hello_world",
                "language": "en_US",
                "body_text": "Hello World",
            }
            (await client.post(f"{sim}/templates", json=template)).raise_for_status()
            for i in range(1 + MULTI_NUMBERS):
                pnid, token = f"1065403522{i + 1:05d}", f"bench-token-{i + 1}-{secrets.token_hex(4)}"
                number = {
                    "phone_number_id": pnid,
                    "waba_id": WABA_ID,
                    "token": token,
                    "display_phone_number": f"1555000{i + 1:04d}",
                    "verified_name": f"Bench {i + 1}",
                }
                (await client.post(f"{sim}/numbers", json=number)).raise_for_status()
                created = await client.post(
                    f"{api}/numbers",
                    headers=headers,
                    json={
                        "phone_number_id": pnid,
                        "waba_id": WABA_ID,
                        "access_token": token,
                        "display_name": f"Bench {i + 1}",
                    },
                )
                created.raise_for_status()
                number_id = int(created.json()["id"])
                tested = await client.post(f"{api}/numbers/{number_id}/test", headers=headers)
                tested.raise_for_status()
                state = tested.json()["number"]["connection_state"]
                if state != "connected":
                    raise RuntimeError(f"number {pnid} is {state} after its test: {tested.text[:500]}")
                self.numbers.append((number_id, pnid))
        say(
            f"  {len(self.numbers)} numbers connected (1 for the single-number phase,"
            f" {MULTI_NUMBERS} for the rest)"
        )

    async def teardown(self) -> None:
        """Stop everything and drop the database."""
        for service in (self.server, self.simulator):
            if service is not None:
                with contextlib.suppress(Exception):
                    await service.stop()
        await self.reader.close()
        if self.pg_dsn and not self.args.keep:
            admin = await asyncpg.connect(f"{self.args.pg_dsn.rstrip('/')}/postgres")
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            finally:
                await admin.close()

    # --- queueing and measuring

    async def queue(
        self, numbers: list[int], count: int, *, rate: float = 0, seconds: float = 0
    ) -> dict[str, Any]:
        """wrk POSTs template sends (unpaced until `count` answered, or paced at `rate` for `seconds`)."""
        prefix = self.next_prefix()
        duration = seconds if rate else max(60.0, count / 100)
        argv = [
            self.wrk,
            "-t1",
            f"-c{64 if not rate else 128}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{self.port}/api/v1/messages",
            "--",
            self.api_key,
            ",".join(str(n) for n in numbers),
            prefix,
            f"{rate:.3f}",
            str(0 if rate else count),
        ]
        process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        result: dict[str, Any] | None = None
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode().strip()
            if line == "STOPPED":
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(2)
            elif line.startswith("WRK_RESULT "):
                result = json.loads(line.split(" ", 1)[1])
        stderr = await process.stderr.read() if process.stderr else b""
        await process.wait()
        if result is None:
            raise RuntimeError(f"wrk gave no result: {stderr.decode(errors='replace')}")
        seconds_taken = result["duration_us"] / 1e6
        return {
            "requests": result["requests"],
            "seconds": round(seconds_taken, 2),
            "rate": round(result["requests"] / seconds_taken, 1) if seconds_taken else 0.0,
            "non_2xx": result["status_errors"],
            "socket_errors": result["connect_errors"] + result["read_errors"] + result["write_errors"],
            "latency_ms": {k: round(v / 1000, 1) for k, v in result["latency_us"].items()},
        }

    async def queue_backlog(self, phase: Phase, numbers: list[int], count: int, after_id: int) -> None:
        """A sample through the API (its rate is reported), the rest cloned from it in the database."""
        sample = min(count, API_SAMPLE_PER_NUMBER * len(numbers))
        queued = await self.queue(numbers, sample)
        phase.api_queue = queued
        templates = await self.reader.samples(after_id)
        through_api = sum((await self.reader.counts(after_id)).values())
        phase.queue_rate, phase.queue_non_2xx = queued["rate"], queued["non_2xx"]
        say(
            f"  API: {through_api} queued in {queued['seconds']}s ({queued['rate']}/s,"
            f" p50 {queued['latency_ms']['p50']} ms, p99 {queued['latency_ms']['p99']} ms, non-2xx"
            f" {queued['non_2xx']})"
        )
        started = time.monotonic()
        rest = count - through_api
        if rest > 0:
            await self.reader.clone([templates[n] for n in numbers], rest, self.next_prefix())
        phase.queued = sum((await self.reader.counts(after_id)).values())
        phase.queue_seconds = round(time.monotonic() - started, 2)
        say(f"  + {max(rest, 0)} cloned in the database in {phase.queue_seconds}s: {phase.queued} queued")

    def next_prefix(self) -> str:
        """A recipient prefix used by no earlier batch of this run (distinct recipients everywhere)."""
        self.prefix_counter += 1
        return f"62812{self.prefix_counter:02d}"

    async def clear_simulator_log(self) -> None:
        """Forget the requests of earlier phases."""
        async with httpx.AsyncClient(timeout=30) as client:
            (await client.delete(f"http://127.0.0.1:{self.sim_port}/_sim/requests")).raise_for_status()

    async def simulator_log(self) -> list[dict[str, Any]]:
        """Every send request since the last clear."""
        async with httpx.AsyncClient(timeout=120) as client:
            response = await client.get(
                f"http://127.0.0.1:{self.sim_port}/_sim/requests", params={"path": "/messages"}
            )
            response.raise_for_status()
            return list(response.json())

    async def start_workers(self, processes: int, *, redis: bool) -> list[Service]:
        """Outbox workers: separate processes on PostgreSQL, the server's in-process ones on SQLite."""
        if self.kind == "sqlite":
            await self.start_server(workers=True)
            return []
        started = []
        for i in range(processes):
            name = f"worker{i + 1}"
            service = Service(
                name, self.worker_argv(), self.env(redis=redis), ROOT, self.logs / f"{name}.log"
            )
            await service.start()
            self.meter.track(name, service.pid)
            started.append(service)
        return started

    async def stop_workers(self, workers: list[Service]) -> None:
        """Stop worker processes (or restart the server without its workers, on SQLite)."""
        for service in workers:
            await service.stop()
            self.meter.forget(service.name)
        if self.kind == "sqlite" and self.server_workers:
            await self.start_server(workers=False)

    async def wait_drained(self, after_id: int, expected: int, budget: float) -> tuple[bool, float]:
        """Poll until no message above after_id is queued or sending; (drained, seconds waited)."""
        started = time.monotonic()
        last_print = started
        while True:
            counts = await self.reader.counts(after_id)
            done = counts.get("sent", 0) + counts.get("failed", 0)
            if done >= expected and not counts.get("queued") and not counts.get("sending"):
                return True, time.monotonic() - started
            if time.monotonic() - started > budget:
                say(f"    not drained after {budget:.0f}s: {counts}")
                return False, time.monotonic() - started
            if time.monotonic() - last_print >= 5:
                say(f"    {counts}")
                last_print = time.monotonic()
            await asyncio.sleep(0.25)

    async def profile(self, pid: int, seconds: float, label: str) -> str | None:
        """py-spy on a worker for a few seconds (--profile): a raw flame file for later reading."""
        py_spy = BIN / "py-spy"
        if not py_spy.exists():
            return None
        out = self.logs / f"profile-{label}.txt"
        process = await asyncio.create_subprocess_exec(
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await process.wait()
        if not out.exists():
            return None
        RESULTS.mkdir(exist_ok=True)
        kept = RESULTS / f"send_throughput-profile-{self.kind}-{label}.txt"
        shutil.copy(out, kept)
        return str(kept.relative_to(ROOT))

    def pnid_map(self) -> dict[str, int]:
        return {pnid: number_id for number_id, pnid in self.numbers}

    async def backlog_phase(
        self, name: str, numbers: list[int], count: int, processes: int, *, redis: bool
    ) -> Phase:
        """Queue `count` with the workers off, then start them and measure the drain."""
        phase = Phase(name, self.kind, self.workers_label(processes, redis), len(numbers))
        say(f"== {self.kind} {name}: queue {count} to {len(numbers)} number(s), workers off")
        after_id = await self.reader.max_id()
        await self.queue_backlog(phase, numbers, count, after_id)
        await self.clear_simulator_log()
        expected_rate = PACED * len(numbers)
        budget = phase.queued / expected_rate * 6 + 30
        workers = await self.start_workers(processes, redis=redis)
        first = self.meter.snapshot()
        profiling = None
        if self.args.profile and (workers or self.server):
            pid = workers[0].pid if workers else self.server.pid  # type: ignore[union-attr]
            profiling = asyncio.create_task(
                self.profile(pid, min(10, phase.queued / expected_rate * 0.6), name)
            )
        try:
            phase.drained, phase.drain_wall_seconds = await self.wait_drained(after_id, phase.queued, budget)
            phase.cpu = self.meter.usage(first, self.meter.snapshot())
            if profiling is not None:
                phase.profile = await profiling
        finally:
            await self.stop_workers(workers)
        await self.measure(phase, after_id)
        if not phase.drained:
            await self.reader.discard_queued()
        say(phase.line())
        say(f"    cpu (% of a core): {phase.cpu}")
        return phase

    def workers_label(self, processes: int, redis: bool) -> str:
        """How the outbox runs in a phase."""
        if self.kind == "sqlite":
            return "in-process (serve)"
        return f"{processes} process{'es' if processes > 1 else ''}" + (" + Redis" if redis else "")

    async def steady_phase(
        self, numbers: list[int], rate: float, seconds: float, processes: int, *, redis: bool, api: bool
    ) -> Phase:
        """Messages arrive at `rate` while the workers run; latency queue -> sent.

        api=False: inserted in the database every 50 ms (the API cannot queue this fast here);
        api=True: through POST /api/v1/messages, paced by wrk (includes the API's wake-up of the outbox).
        """
        name = "steady (API)" if api else "steady (DB inserts)"
        phase = Phase(name, self.kind, self.workers_label(processes, redis), len(numbers), target_rate=rate)
        say(
            f"== {self.kind} {name}: {rate:.0f}/s for {seconds:.0f}s across {len(numbers)} numbers,"
            " workers on"
        )
        after_id = await self.reader.max_id()
        templates_at = await self.reader.samples(0)
        templates = [templates_at[n] for n in numbers]
        await self.clear_simulator_log()
        workers = await self.start_workers(processes, redis=redis)
        try:
            await asyncio.sleep(1.5)
            first = self.meter.snapshot()
            if api:
                queued = await self.queue(numbers, 0, rate=rate, seconds=seconds)
                phase.api_queue = queued
                phase.queue_rate, phase.queue_non_2xx = queued["rate"], queued["non_2xx"]
                phase.queue_seconds = queued["seconds"]
            else:
                prefix, made, started = self.next_prefix(), 0, time.monotonic()
                while (elapsed := time.monotonic() - started) < seconds:
                    due = int(elapsed * rate) - made
                    if due > 0:
                        await self.reader.clone(templates, due, prefix, start=made)
                        made += due
                    await asyncio.sleep(0.05)
                phase.queue_seconds = round(time.monotonic() - started, 2)
                phase.queue_rate = round(made / phase.queue_seconds, 1)
            phase.cpu = self.meter.usage(first, self.meter.snapshot())
            phase.queued = sum((await self.reader.counts(after_id)).values())
            say(f"  queued {phase.queued} in {phase.queue_seconds}s ({phase.queue_rate}/s of {rate:.0f})")
            phase.drained, phase.drain_wall_seconds = await self.wait_drained(after_id, phase.queued, 60)
        finally:
            await self.stop_workers(workers)
        await self.measure(phase, after_id)
        if not phase.drained:
            await self.reader.discard_queued()
        say(phase.line())
        say(f"    cpu while queueing (% of a core): {phase.cpu}")
        return phase

    async def measure(self, phase: Phase, after_id: int) -> None:
        """Figures from the database and from the simulator's log."""
        rows = await self.reader.rows(after_id)
        sent = [r for r in rows if r.status != "failed" and r.sent_at is not None]
        phase.queued = len(rows)  # wrk's last in-flight requests land after the first count
        phase.sent = len(sent)
        phase.failed = sum(1 for r in rows if r.status == "failed")
        phase.retried = sum(1 for r in rows if r.attempts > 1)
        if len(sent) > 1:
            times = sorted(r.sent_at for r in sent if r.sent_at is not None)
            phase.send_seconds = round(times[-1] - times[0], 2)
            phase.messages_per_s = round((len(times) - 1) / max(times[-1] - times[0], 1e-6), 1)
        lags = [(r.sent_at - r.queued_at) * 1000 for r in sent if r.sent_at is not None]
        phase.latency_ms = {
            "p50": round(percentile(lags, 50), 1),
            "p99": round(percentile(lags, 99), 1),
            "max": round(max(lags, default=0.0), 1),
        }
        phase.simulator = simulator_view(await self.simulator_log(), self.pnid_map())

    async def run(self) -> list[Phase]:
        """Every phase on this database."""
        say(f"\n#### {self.kind}: {self.url}")
        phases: list[Phase] = []
        try:
            await self.setup()
            single = [self.numbers[0][0]]
            multi = [number_id for number_id, _ in self.numbers[1:]]
            phases.append(
                await self.backlog_phase(
                    "single (1 number)", single, self.plan.single_messages, 1, redis=False
                )
            )
            plan = self.plan
            if self.kind == "postgresql":
                n = plan.multi_messages
                phases.append(
                    await self.backlog_phase(f"multi ({MULTI_NUMBERS} numbers)", multi, n, 1, redis=False)
                )
                phases.append(
                    await self.backlog_phase(f"multi ({MULTI_NUMBERS} numbers)", multi, n, 2, redis=True)
                )
                best = max(phases[-2:], key=lambda p: p.messages_per_s)
                processes, redis = (1, False) if best is phases[-2] else (2, True)
                rate, api_rate = plan.steady_rate_pg, plan.steady_api_rate
            else:
                n = plan.sqlite_multi_messages
                phases.append(
                    await self.backlog_phase(f"multi ({MULTI_NUMBERS} numbers)", multi, n, 1, redis=False)
                )
                processes, redis = 1, False
                rate, api_rate = plan.steady_rate_sqlite, plan.steady_api_rate
            phases.append(
                await self.steady_phase(multi, rate, plan.steady_seconds, processes, redis=redis, api=False)
            )
            phases.append(
                await self.steady_phase(
                    multi, api_rate, plan.steady_seconds, processes, redis=redis, api=True
                )
            )
        finally:
            await self.teardown()
        return phases


# --- baseline ---------------------------------------------------------------------------------------


def run_baseline(seconds: int) -> dict[str, Any]:
    """The simulator's raw send capacity, limits off, wrk -c64 (bench/simulator_throughput.py's pieces)."""
    wrk_path = ensure_wrk()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env = {k: v for k, v in env.items() if not k.startswith("LAYANIFY_SIMULATOR_")}
    port = free_port()
    process = simulator_throughput.serve("simulator_throughput:make_app", port, env, factory=True)
    try:
        run = simulator_throughput.wrk(
            wrk_path,
            f"http://127.0.0.1:{port}/{GRAPH_VERSION}/{simulator_throughput.PNID}/messages",
            seconds,
            64,
            "simulator, limits off",
        )
    finally:
        simulator_throughput.stop(process)
    return asdict(run)


# --- reporting ------------------------------------------------------------------------------------


def goals(phases: list[Phase]) -> dict[str, dict[str, Any]]:
    """The issue's goals with the figures they are judged on."""
    singles = [p for p in phases if p.numbers == 1]
    best_single = max((p.messages_per_s for p in singles), default=0.0)
    pg_multi = [
        p for p in phases if p.database == "postgresql" and p.numbers > 1 and not p.name.startswith("steady")
    ]
    best_pg = max((p.messages_per_s for p in pg_multi), default=0.0)
    worst_window = max((p.simulator.get("max_1s_window", 0) for p in phases), default=0)
    throttled = sum(p.simulator.get("throttled", 0) for p in phases)
    all_sent = all(p.drained and p.failed == 0 for p in phases)
    result = {
        "per-number limit sustained at 80/s": {
            "ok": best_single >= SUSTAIN_GOAL and all(p.drained for p in singles),
            "value": f"{best_single:.1f}/s on one number (pacer allows {PACED}/s)",
            "goal": f">= {SUSTAIN_GOAL:.0f}/s",
        },
        "never exceeded a configured limit": {
            "ok": worst_window <= LIMIT and throttled == 0,
            "value": f"highest accepted sends of one number in any 1 s: {worst_window};"
            f" 130429/131056 answers: {throttled}",
            "goal": f"<= {LIMIT} per number per 1 s, 0 throttled",
        },
        "every queued message sent": {
            "ok": all_sent,
            "value": ", ".join(f"{p.database}/{p.name}/{p.workers}: {p.sent}/{p.queued}" for p in phases),
            "goal": "all drained, none failed",
        },
    }
    if pg_multi:
        result[">= 1,000/s across numbers on PostgreSQL"] = {
            "ok": best_pg >= ACROSS_GOAL,
            "value": f"{best_pg:.0f}/s ({MULTI_NUMBERS} numbers; pacer ceiling {PACED * MULTI_NUMBERS}/s)",
            "goal": f">= {ACROSS_GOAL:.0f}/s",
        }
    return result


def print_summary(phases: list[Phase], baseline: dict[str, Any], verdicts: dict[str, dict[str, Any]]) -> None:
    """The final table, the ratios and PASS/FAIL."""
    say("\n" + "=" * 110)
    say("SUMMARY (one machine, loopback; the simulator enforces 80/s per number)")
    say("=" * 110)
    say(
        f"  {'database':<10} {'phase':<22} {'workers':<22} {'queued':>7} {'sent/s':>8} {'send s':>7}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'max 1s/num':>10} {'throttled':>9} {'failed':>6} {'vs base':>7}"
    )
    base = baseline["rps"]
    for p in phases:
        say(
            f"  {p.database:<10} {p.name:<22} {p.workers:<22} {p.queued:>7} {p.messages_per_s:>8.1f}"
            f" {p.send_seconds:>7.1f} {p.latency_ms.get('p50', 0):>8.0f} {p.latency_ms.get('p99', 0):>8.0f}"
            f" {p.simulator.get('max_1s_window', 0):>10} {p.simulator.get('throttled', 0):>9} {p.failed:>6}"
            f" {p.messages_per_s / base:>6.2f}x"
        )
    say(
        f"\n  baseline: the simulator alone, limits off, wrk -c64: {base:.0f} sends/s"
        f" (p50 {baseline['p50_ms']:.1f} ms, p99 {baseline['p99_ms']:.1f} ms)"
    )
    multi = [p for p in phases if p.numbers > 1 and not p.name.startswith("steady")]
    if multi:
        best = max(multi, key=lambda p: p.messages_per_s)
        say(
            f"  ratio: best across-numbers rate {best.messages_per_s:.0f}/s ({best.database}, {best.workers})"
            f" / baseline {base:.0f}/s = {best.messages_per_s / base:.2f}x;"
            f" / the pacer's ceiling {PACED * MULTI_NUMBERS}/s ="
            f" {best.messages_per_s / (PACED * MULTI_NUMBERS):.2f}x"
        )
    single = [p for p in phases if p.numbers == 1]
    for p in single:
        say(
            f"  {p.database} single number: {p.messages_per_s:.1f}/s ="
            f" {p.messages_per_s / LIMIT:.3f} of the 80/s"
            f" limit ({p.messages_per_s / PACED:.3f} of the pacer's {PACED}/s)"
        )
    say(
        "  (backlog phases: latency = time spent in the queued backlog;"
        " the steady phases give the user's latency)"
    )
    say("\nGoals:")
    for name, goal in verdicts.items():
        say(f"  {'PASS' if goal['ok'] else 'FAIL'}  {name:<42} {goal['value']}  (goal {goal['goal']})")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller phases (under 2 minutes)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432"),
        help="PostgreSQL server DSN without a database name",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="Redis for the shared pacer of several worker processes (a database of its own)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy a worker during each backlog drain")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and the database")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; exit status 0 (the goals are reported, not enforced)."""
    plan = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="layanify-send-bench-"))
    meter = CpuMeter()
    started = time.monotonic()
    source = source_fingerprint()
    say(f"layanify send throughput benchmark ({'quick' if args.quick else 'full'}); work dir {workdir}")
    say(
        f"code: commit {source['commit']}, src sha256 {source['src_sha256']}"
        + (f", {len(source['src_changed'])} uncommitted file(s) in src/" if source["src_changed"] else "")
    )
    say(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f},"
        f" Python {platform.python_version()}"
    )
    say(f"== baseline: the simulator's raw send capacity (limits off, wrk -c64, {plan.baseline_seconds}s)")
    baseline = await asyncio.to_thread(run_baseline, plan.baseline_seconds)
    say(f"  {baseline['rps']:.0f} sends/s, p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms")
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    phases: list[Phase] = []
    benches = []
    try:
        for kind in kinds:
            bench = DatabaseBench(args, plan, kind, workdir, meter)
            benches.append(bench)
            phases += await bench.run()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    verdicts = goals(phases)
    print_summary(phases, baseline, verdicts)
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "mode": "quick" if args.quick else "full",
        "plan": asdict(plan),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "source": source,
        "worker_processes": "layanify worker",
        "elapsed_s": round(time.monotonic() - started, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "baseline": baseline,
        "goals": verdicts,
    }
    for kind in kinds:
        out = RESULTS / f"send_throughput-{kind}.json"
        document = {**meta, "phases": [asdict(p) for p in phases if p.database == kind]}
        out.write_text(json.dumps(document, indent=2) + "\n")
        say(f"wrote {out.relative_to(ROOT)}")
    say(f"elapsed {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
