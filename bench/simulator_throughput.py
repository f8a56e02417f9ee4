"""Cloud API simulator throughput: text sends per second, against a bare ASGI baseline.

    .venv/bin/python bench/simulator_throughput.py [--seconds N] [--connections C]

About 4 x (N + 2) seconds. Goal (issue): the simulator sustains >= 2,000 send requests/s on this machine,
so it is never the bottleneck of the product's benchmarks. The goal is reported (PASS/FAIL), the exit
status is 0.

Method: everything runs over loopback in separate processes. Each server is one uvicorn process with the
flags `layanify simulator` uses (uvloop, httptools, no access log). Debian's `wrk` (one thread, C
connections, installed with apt-get when missing) POSTs valid text sends (bench/wrk_send.lua: bearer
token, four recipients with an open window, a `biz_opaque_callback_data` each) for N seconds after a
2-second warm-up. Phases:
  1. baseline: bench/simulator_baseline_app.py, a bare ASGI app answering a fixed send response;
  2. simulator, webhooks off (no callback URL): validation, token check, wamid, state, statuses scheduled;
  3. simulator, webhooks on: every send's sent/delivered/read statuses POSTed, signed, to a sink
     (the baseline app, answering 200), from the same process.
Rate limits are disabled for the bench (rate_limit_per_second=0, pair_rate_burst=0): they are what is
measured elsewhere, and the bench sends far faster than Meta's 80/s per number.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "wrk_send.lua"
GOAL = 2000.0
PNID = "106540352242922"
RECIPIENTS = ("6281200000001", "6281200000002", "6281200000003", "6281200000004")


def make_app() -> object:
    """The simulator app the bench serves (uvicorn --factory): demo data, limits off, faults from env."""
    from layanify.simulator import Simulator, SimulatorConfig
    from layanify.simulator.cli import seed_demo, tune_gc

    config = SimulatorConfig.from_env(
        rate_limit_per_second=0, pair_rate_burst=0, status_delays=(0.0, 0.05, 0.1)
    )
    sim = Simulator(config)
    seed_demo(sim)
    for wa_id in RECIPIENTS:
        sim.add_customer(wa_id, name=f"Bench {wa_id[-1]}", last_message_at=datetime.now(UTC))
    tune_gc()  # as `layanify simulator` does (run_simulator)
    return sim.app


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", flush=True)
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def serve(app: str, port: int, env: dict[str, str], factory: bool = False) -> subprocess.Popen[bytes]:
    """Start one uvicorn process (uvloop, httptools, no access log) and wait until it answers."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        app,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        argv.append("--factory")
    process = subprocess.Popen(argv, env=env, cwd=BENCH_DIR.parent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{app} exited with {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Run:
    """One wrk run's figures."""

    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    def line(self) -> str:
        """One printable line."""
        return (
            f"  {self.label:<34} {self.rps:8.0f} req/s  p50={self.p50_ms:6.2f}ms  p99={self.p99_ms:6.2f}ms"
            f"  requests={self.requests}  non-2xx={self.non_2xx}  socket-errors={self.socket_errors}"
        )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(wrk_path: str, url: str, seconds: int, connections: int, label: str) -> Run:
    """Warm up 2 s, then run wrk for `seconds` and parse its summary."""
    base = [wrk_path, "-t1", f"-c{connections}", "--latency", "-s", str(LUA)]
    subprocess.run([*base, "-d2s", url], check=True, capture_output=True)
    out = subprocess.run([*base, f"-d{seconds}s", url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    latency = dict(
        re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)
        and [(p, _ms(v, u)) for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)]
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Run(
        label,
        rps,
        latency.get("50", 0.0),
        latency.get("99", 0.0),
        requests,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(x) for x in socket.groups()) if socket else 0,
    )


def main() -> None:
    """Run the three phases and print the figures, the ratio to the baseline and PASS/FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=50, help="webhook_batch_max for the webhooks-on phase")
    args = parser.parse_args()
    wrk_path = ensure_wrk()
    env = {**os.environ, "PYTHONPATH": str(BENCH_DIR.parent / "src")}
    path = f"/v23.0/{PNID}/messages"
    print(
        f"simulator throughput: wrk -t1 -c{args.connections} -d{args.seconds}s, {os.cpu_count()} CPUs",
        flush=True,
    )

    runs: list[Run] = []
    port = free_port()
    baseline = serve("simulator_baseline_app:app", port, env)
    try:
        runs.append(
            wrk(
                wrk_path,
                f"http://127.0.0.1:{port}{path}",
                args.seconds,
                args.connections,
                "baseline (bare ASGI)",
            )
        )
        print(runs[-1].line(), flush=True)
        for label, callback in (
            ("simulator, webhooks off", None),
            (f"simulator, webhooks on (batch {args.batch})", port),
        ):
            sim_env = {k: v for k, v in env.items() if not k.startswith("LAYANIFY_SIMULATOR_")}
            if callback is not None:
                sim_env["LAYANIFY_SIMULATOR_CALLBACK_URL"] = f"http://127.0.0.1:{callback}/webhook"
                sim_env["LAYANIFY_SIMULATOR_WEBHOOK_BATCH_MAX"] = str(args.batch)
            sim_port = free_port()
            simulator = serve("simulator_throughput:make_app", sim_port, sim_env, factory=True)
            try:
                runs.append(
                    wrk(wrk_path, f"http://127.0.0.1:{sim_port}{path}", args.seconds, args.connections, label)
                )
                print(runs[-1].line(), flush=True)
                health = httpx.get(f"http://127.0.0.1:{sim_port}/_sim/health", timeout=5).json()
                print(f"    webhooks still pending at the end: {health['pending_webhooks']}", flush=True)
            finally:
                stop(simulator)
    finally:
        stop(baseline)

    base = runs[0].rps
    print("\nsummary")
    for run in runs:
        print(run.line() + (f"  ratio={run.rps / base:.2f}" if run is not runs[0] else ""))
    worst = min(run.rps for run in runs[1:])
    verdict = "PASS" if worst >= GOAL and all(r.non_2xx == 0 for r in runs[1:]) else "FAIL"
    print(f"\ngoal: >= {GOAL:.0f} send requests/s (slowest simulator phase: {worst:.0f} req/s): {verdict}")


if __name__ == "__main__":
    main()
