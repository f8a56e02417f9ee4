"""CPU accounting from /proc: who used the machine during a measurement window.

Each figure is a percentage of one core over the window (so a 2-core machine tops out at 200% busy).
`other` is whatever ran that is neither one of the processes the benchmark started nor PostgreSQL
(other people's tests on a shared machine, for instance): when it is large, the figures are pessimistic.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state): utime is 14, stime 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started (the server's receipt writer, decision 39), from /proc."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _postgres_cpu() -> dict[int, float]:
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        seconds = process_cpu_seconds(int(entry.name))
        if seconds is not None:
            found[int(entry.name)] = seconds
    return found


def _machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass(frozen=True)
class Snapshot:
    """CPU counters at one instant."""

    at: float
    processes: dict[str, float]
    postgres: dict[int, float]
    busy: float


class CpuMeter:
    """Tracks named processes (server, wrk, worker, the benchmark itself) plus PostgreSQL and the machine."""

    def __init__(self) -> None:
        self._pids: dict[str, int] = {"bench": os.getpid()}

    def track(self, name: str, pid: int) -> None:
        """Account `pid` under `name` from now on."""
        self._pids[name] = pid

    def forget(self, name: str) -> None:
        """Stop accounting `name`."""
        self._pids.pop(name, None)

    def snapshot(self) -> Snapshot:
        """Counters now."""
        processes = {}
        for name, pid in self._pids.items():
            seconds = process_cpu_seconds(pid)
            if seconds is not None:
                processes[name] = seconds
        return Snapshot(time.monotonic(), processes, _postgres_cpu(), _machine_busy_seconds())

    @staticmethod
    def usage(first: Snapshot, second: Snapshot) -> dict[str, float]:
        """Percent of one core per process between two snapshots, plus postgres, machine and other."""
        wall = max(second.at - first.at, 1e-6)
        usage = {
            name: 100 * (second.processes[name] - first.processes[name]) / wall
            for name in first.processes
            if name in second.processes
        }
        common = first.postgres.keys() & second.postgres.keys()
        usage["postgres"] = 100 * sum(second.postgres[p] - first.postgres[p] for p in common) / wall
        machine = 100 * (second.busy - first.busy) / wall
        usage["other"] = max(machine - sum(usage.values()), 0.0)
        usage["machine"] = machine
        return {name: round(value, 1) for name, value in usage.items()}
