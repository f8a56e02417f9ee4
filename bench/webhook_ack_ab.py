"""Acks/s of the webhook endpoint in alternating rounds: the bare baseline, then the server as shipped
and any variants, each round against the baseline measured just before it.

    .venv/bin/python bench/webhook_ack_ab.py [--db sqlite|postgres] [--rounds 3] [--seconds 8]
                                             [--connections 64] [--no-workers] [--rate R]
                                             [--variant NAME:LAYANIFY_X=V,LAYANIFY_Y=W ...]
                                             [--variant NAME@REV[:LAYANIFY_X=V,...] ...]

About (rounds × (2 + variants) × (seconds + 4)) seconds: under 2 minutes as given. A narrower tool than
bench/webhook_ingest.py, for one question: does a change to the receipt path move acks/s? The full bench
measures the server as its earlier phases left it (hundreds of thousands of rows behind it), in 5 pairs
against the baseline (its phase 2b, decision 43), and takes 10 minutes. Here each round starts the
baseline (bench/baseline_app.py), then a fresh `layanify serve` on a fresh database for the product as
shipped (`A`) and for each variant (the same server with extra settings; with `@REV`, the code of that
git revision, checked out as a worktree for the run and put first on PYTHONPATH, so a code change can
be measured against its parent: the revision must need no dependency this virtualenv lacks), in
alternating order (A, B, … then …, B, A), every one with the same wrk bodies for the same time: machine
drift hits every setup alike, and the ratio of each run to its own round's baseline is printed, then the
median.

The server runs with its in-process worker, as shipped (`--no-workers`: the scale-out setup, processing
left to `layanify worker` processes, none started here). CPU of the server, its receipt writer process
(SQLite), wrk and PostgreSQL is shown per run, as in the full bench, and the messages the in-process
worker stored during the run (warm-up included).

`--profile` runs py-spy (`.venv/bin/pip install py-spy`) on each server run and prints, per setup, where
the server's samples went by asyncio task: the outermost frame of ours in each stack (the ASGI app for
requests, a worker's `run` for background work), so in-process background work can be weighed
against the receipts it shares the core with.

`--rate R` paces wrk at R webhooks/s (Poisson arrivals, as the full bench's paced runs) instead of
saturating: no baseline then, and each run reports the share of R answered, p50/p99 and the messages
processed meanwhile (how acks and processing share the server's core under a given load).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from dbprobe import BenchDatabase, PostgresDatabase, SqliteDatabase
from layanify.config import Settings
from layanify.observability import configure_logging
from payloads import PayloadFactory
from procstat import CpuMeter, child_pids
from webhook_ingest import (
    BIN,
    LAYANIFY,
    QUICK,
    ROOT,
    WEBHOOK_PATH,
    Context,
    Service,
    Wrk,
    WrkRun,
    baseline_service,
    ensure_wrk,
    free_port,
    run_cli,
)

BODIES = 60_000  # enough for ~8 s at the fastest baseline without most of them being resent


def parse_variant(text: str) -> tuple[str, dict[str, str], str | None]:
    """`NAME:KEY=V,KEY=W` -> (NAME, {KEY: V, KEY: W}, None); `NAME@REV[:KEY=V,…]` -> (NAME, {…}, REV)."""
    head, _, settings = text.partition(":")
    name, _, revision = head.partition("@")
    if not name or name in ("A", "baseline"):
        raise argparse.ArgumentTypeError(f"a variant needs a name other than A or baseline: {text!r}")
    if "@" in head and not revision:
        raise argparse.ArgumentTypeError(f"NAME@REV needs a git revision after the @: {text!r}")
    pairs = [item.split("=", 1) for item in settings.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(f"settings are KEY=VALUE, comma-separated: {text!r}")
    return name, dict(pairs), revision or None


def resolve(revision: str) -> str:
    """The commit `revision` names in this checkout (exits when it names none)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise SystemExit(f"not a commit here: {revision!r}")
    return found.stdout.strip()


def check_out(commit: str, where: Path) -> None:
    """A detached git worktree of `commit` at `where`. The variant's server runs that worktree's `src/`
    (first on PYTHONPATH, ahead of this checkout's editable install) with this checkout's virtualenv: the
    revision must need no other dependencies."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), commit], check=True
    )


def remove_worktree(where: Path) -> None:
    """Undo `check_out`."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)


def task_of(stack: str) -> str:
    """The task a py-spy stack ran in: its outermost frame of ours (no line number), or what it was doing
    outside our code (the event loop waiting or running uvicorn's own callbacks)."""
    frames = stack.split(";")
    for frame in frames:
        if "(layanify/" in frame and "(layanify/cli/" not in frame and "__main__" not in frame:
            return frame.rsplit(":", 1)[0] + ")"
    leaf = frames[-1]
    if leaf.startswith(("run (asyncio/runners.py", "select (selectors.py")):
        return "(idle: waiting in the event loop)"
    return f"(outside our code) {leaf.rsplit(':', 1)[0]})"


def tasks_in(raw_profile: Path) -> Counter[str]:
    """Samples of a py-spy raw profile (`stack count` lines) by `task_of`."""
    found: Counter[str] = Counter()
    for line in raw_profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            found[task_of(stack)] += int(count)
    return found


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy the server for `seconds` at 100 Hz without pausing it (None when py-spy is missing)."""
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        print("(--profile: py-spy not found; `.venv/bin/pip install py-spy`)", flush=True)
        return None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(round(seconds), 1)), "--rate", "100"]
    argv += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-database", default="layanify_ab")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-workers", action="store_true", help="serve --no-workers (the scale-out setup)")
    parser.add_argument("--rate", type=float, default=0, help="paced at this many webhooks/s (0: unpaced)")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[])
    parser.add_argument("--profile", action="store_true", help="py-spy each server run; samples by task")
    args = parser.parse_args(argv)
    names = [name for name, _, _ in args.variant]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ: {', '.join(names)}")
    return args


async def run_baseline(ctx: Context, bodies: Path, connections: int, seconds: float) -> WrkRun:
    """One run of bench/baseline_app.py under uvicorn with the server's flags."""
    service, port = baseline_service(ctx, "baseline.log")
    await service.start()
    ctx.meter.track("server", service.pid)
    try:
        await service.wait_ready(f"http://127.0.0.1:{port}/", any_status=True)
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        await ctx.wrk.run("warmup", url, bodies, 16, 1)
        return await ctx.wrk.run("baseline", url, bodies, connections, seconds)
    finally:
        ctx.meter.forget("server")
        await service.stop()


async def run_server(
    ctx: Context,
    database: BenchDatabase,
    name: str,
    settings: dict[str, str],
    args: argparse.Namespace,
    bodies: Path,
    samples: Counter[str] | None = None,
) -> tuple[WrkRun, int]:
    """One run of `layanify serve` on a fresh database, with `settings` on top of the bench's; the
    messages stored by the end of it. With `samples`, the run's py-spy samples are added to it."""
    await database.reset()
    env = ctx.env(database.url) | settings
    user = ["user", "create", "--email", "bench@example.com", "--password", "benchpass123"]
    await run_cli([*user, "--workspace", "Bench"], env, ctx.workdir)
    port = free_port()
    argv = [LAYANIFY, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.no_workers:
        argv.append("--no-workers")
    service = Service(name, argv, env, ctx.workdir, ctx.workdir / f"server-{name}.log")
    await service.start()
    try:
        await service.wait_ready(f"http://127.0.0.1:{port}/readyz")
        ctx.meter.track("server", service.pid)
        for child in child_pids(service.pid):
            ctx.meter.track("writer", child)
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        await ctx.wrk.run("warmup", url, bodies, 16, 1, rate=args.rate)  # paced runs: no backlog from it
        out = ctx.workdir / f"profile-{name}.txt"
        spy = start_profile(service.pid, args.seconds - 1, out) if samples is not None else None
        run = await ctx.wrk.run(name, url, bodies, args.connections, args.seconds, rate=args.rate)
        if spy is not None and samples is not None:
            await asyncio.to_thread(spy.wait)
            if out.exists():
                samples.update(tasks_in(out))
        inspector = await database.inspector()
        try:
            stored = (await inspector.sample(time.monotonic())).messages
        finally:
            await inspector.close()
        return run, stored
    finally:
        ctx.meter.forget("server")
        ctx.meter.forget("writer")
        await service.stop()


def variant_setups(
    variants: list[tuple[str, dict[str, str], str | None]],
    commits: dict[str, str],
    workdir: Path,
    worktrees: list[Path],
) -> tuple[list[tuple[str, dict[str, str]]], dict[str, str]]:
    """The setups to run (`A` first), each with its extra environment, and how each variant is shown.
    A variant of another revision gets a worktree of it (appended to `worktrees` before it is made)."""
    setups: list[tuple[str, dict[str, str]]] = [("A", {})]
    described: dict[str, str] = {}
    for name, settings, revision in variants:
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        if revision is not None:
            where = workdir / f"rev-{name}"
            worktrees.append(where)
            check_out(commits[name], where)
            settings = {**settings, "PYTHONPATH": str(where / "src")}
            shown = f"code of {revision} ({commits[name][:12]})" + (f", {shown}" if shown else "")
        setups.append((name, settings))
        described[name] = shown
    return setups, described


async def main(args: argparse.Namespace) -> int:
    configure_logging(Settings(log_level="WARNING"))
    commits = {name: resolve(revision) for name, _, revision in args.variant if revision is not None}
    workdir = Path(tempfile.mkdtemp(prefix="layanify-ab-"))
    meter = CpuMeter()
    ctx = Context(QUICK, Wrk(ensure_wrk(), meter), meter, workdir, secrets.token_hex(16), False, 1)
    bodies = workdir / "bodies.txt"
    await asyncio.to_thread(PayloadFactory(ctx.secret, seed=7).write_wrk_file, bodies, BODIES)
    database: BenchDatabase = (
        SqliteDatabase(workdir / "bench.db")
        if args.db == "sqlite"
        else PostgresDatabase(args.pg_dsn, args.pg_database)
    )
    worktrees: list[Path] = []  # each removed at the end, even when a later one fails to check out
    try:
        setups, described = variant_setups(args.variant, commits, workdir, worktrees)
        paced = args.rate > 0
        ratios: dict[str, list[float]] = {name: [] for name, _ in setups}  # to the baseline, or to the rate
        rates: dict[str, list[float]] = {name: [] for name, _ in [("baseline", {}), *setups]}
        latency: dict[str, list[str]] = {name: [] for name, _ in setups}
        processed: dict[str, list[int]] = {name: [] for name, _ in setups}
        profiles: dict[str, Counter[str]] = {name: Counter() for name, _ in setups}
        mode = "serve --no-workers" if args.no_workers else "serve (in-process worker)"
        load = f"paced at {args.rate:,.0f}/s" if paced else "unpaced"
        plan = f"{args.seconds:.0f} s a run, {args.rounds} rounds"
        print(f"{args.db}, {mode}, c={args.connections}, {load}, {plan}", flush=True)
        for round_number in range(args.rounds):
            baseline_rps = args.rate
            if not paced:
                baseline = await run_baseline(ctx, bodies, args.connections, args.seconds)
                print(baseline.line(), flush=True)
                rates["baseline"].append(baseline.rps)
                baseline_rps = baseline.rps
            order = setups if round_number % 2 == 0 else setups[::-1]
            for name, settings in order:
                samples = profiles[name] if args.profile else None
                run, stored = await run_server(ctx, database, name, settings, args, bodies, samples)
                ratio = run.rps / max(baseline_rps, 1e-6)
                share = f"{ratio:.0%} of the rate" if paced else f"{ratio:.3f}x"
                print(f"{run.line()}  {share}; {stored} messages stored", flush=True)
                rates[name].append(run.rps)
                ratios[name].append(ratio)
                latency[name].append(f"{run.p50:.1f}/{run.p99:.1f}")
                processed[name].append(stored)
    finally:
        for where in worktrees:
            remove_worktree(where)
        shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(database, PostgresDatabase):
            await database.drop()
    print()
    for name, values in rates.items():
        if not values:
            continue
        line = f"{name:<12} req/s " + " / ".join(f"{v:,.0f}" for v in values)
        if name in ratios:
            line += ("   served " if paced else "   ratio ") + " / ".join(f"{r:.2f}" for r in ratios[name])
            line += f"   median {statistics.median(ratios[name]):.2f}"
            line += "   p50/p99 ms " + " ".join(latency[name])
            line += "   messages " + " / ".join(str(n) for n in processed[name])
        print(line)
    for name, shown in described.items():
        print(f"{name}: {shown}")
    for name, found in profiles.items():
        total = sum(found.values())
        if not total:
            continue
        print(f"\n{name}: py-spy samples by task ({total:,} at 100 Hz over {args.rounds} runs)")
        for task, count in found.most_common(16):
            print(f"  {100 * count / total:5.1f}%  {task}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
