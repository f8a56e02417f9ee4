"""Process-level tuning for the long-running commands (`serve`, `worker`, `up`, `simulator`), and how
in-process background work shares `serve`'s core with the webhook receipts (`defer_to_receipts`)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable

# How often in-process background work looks again whether webhook receipts still wait.
DEFER_POLL_SECONDS = 0.002
# How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms).
THREAD_SWITCH_SECONDS = 0.0002
# Net allocations of tracked objects between two young-generation collections (CPython's default: 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Take everything alive after start-up out of the garbage collector's full passes.

    A full (generation 2) collection walks every object the collector tracks. In `serve` and `worker`
    most of them are made at start-up and live as long as the process (modules, the app and its routes,
    SQLAlchemy's mappers, pydantic's validators); measured under load, full passes over them paused the
    process for 100-125 ms every couple of seconds: no webhook was answered meanwhile, and sends due
    during the pause left together afterwards, so a number's 1 s window at Meta counted more than its
    pacing allowed. Frozen objects are still freed by reference counting; only cycles among them would
    stay, and start-up objects are not garbage.

    Then the young generation is collected every YOUNG_COLLECTION_THRESHOLD net allocations instead of
    every 700 (decision 41). Under load a webhook's objects live until its batch commits, so they were
    walked by collection after collection: at ~19,000 acks/s the server spent ~5 % of its time in 2,500
    young collections every 10 s. Measured in alternating rounds (`bench/webhook_ack_ab.py`), acks/s rose
    in 9 of 11 pairs (SQLite median 0.54x -> 0.57x the baseline, PostgreSQL 0.53x -> 0.58x) and the
    worker's CPU per event fell by 10-15 % (`bench/webhook_cpu.py`). Garbage is still collected; cycles
    just wait for more allocations before they are found.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def hand_over_the_gil_sooner() -> None:
    """Let a thread waiting for the GIL have it within 0.2 ms instead of CPython's 5 ms.

    SQLite runs on threads (the receipt writer's own, aiosqlite's for the ORM) and lets go of the GIL
    while it works; to hand back its result it needs the GIL again, and a busy event loop kept it for up
    to the switch interval. Measured (`bench/webhook_ingest.py --quick --db sqlite`, alternating): best
    acks 0.44-0.45x the baseline at 5 ms, 0.49-0.51x at 0.5 ms, 0.51-0.54x at 0.2 ms, 0.50-0.54x at
    0.1 ms; PostgreSQL (asyncpg, no threads) unchanged. Decision 36.
    """
    sys.setswitchinterval(THREAD_SWITCH_SECONDS)


async def defer_to_receipts(
    busy: Callable[[], bool] | None, *, max_seconds: float, stop: asyncio.Event
) -> None:
    """In-process background work waits while webhook receipts are busy, for at most `max_seconds`.

    Receipts share this process's core with the background tasks; Meta waits for each 200 and retries
    slow answers, while processing and downloads can lag a little and catch up. The wait is bounded so
    background work always moves on under constant load. `busy` is a level in another component
    (`EventWriter.pressed`), so it is polled; the poll only runs while receipts are busy. None: no wait
    (separate `layanify worker` processes, which have cores of their own).
    """
    if busy is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    while busy() and loop.time() < deadline and not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(DEFER_POLL_SECONDS)
