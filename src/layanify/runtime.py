"""Process-level tuning for the long-running commands: `serve`, `worker`, `up` and `simulator`."""

from __future__ import annotations

import gc
import sys

# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
THREAD_SWITCH_SECONDS = 0.0002


def freeze_startup_heap() -> None:
    """Take everything alive after start-up out of the garbage collector's full passes.

    A full (generation 2) collection walks every object the collector tracks. In `serve` and `worker`
    most of them are made at start-up and live as long as the process (modules, the app and its routes,
    SQLAlchemy's mappers, pydantic's validators); measured under load, full passes over them paused the
    process for 100-125 ms every couple of seconds: no webhook was answered meanwhile, and sends due
    during the pause left together afterwards, so a number's 1 s window at Meta counted more than its
    pacing allowed. Frozen objects are still freed by reference counting; only cycles among them would
    stay, and start-up objects are not garbage.
    """
    gc.collect()
    gc.freeze()


def hand_over_the_gil_sooner() -> None:
    """Let a thread waiting for the GIL have it within 0.2 ms instead of CPython's 5 ms.

    SQLite runs on threads (the receipt writer's own, aiosqlite's for the ORM) and lets go of the GIL
    while it works; to hand back its result it needs the GIL again, and a busy event loop kept it for up
    to the switch interval. Measured (`bench/webhook_ingest.py --quick --db sqlite`, alternating): best
    acks 0.44-0.45x the baseline at 5 ms, 0.49-0.51x at 0.5 ms, 0.51-0.54x at 0.2 ms, 0.50-0.54x at
    0.1 ms; PostgreSQL (asyncpg, no threads) unchanged. Decision 36.
    """
    sys.setswitchinterval(THREAD_SWITCH_SECONDS)
