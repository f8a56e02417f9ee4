"""Process-level tuning for the long-running commands: `serve`, `worker`, `up` and `simulator`."""

from __future__ import annotations

import gc


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
