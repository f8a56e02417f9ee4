"""The retention worker: purges what the workspaces keep no longer, hourly, beside the other workers."""

from __future__ import annotations

import asyncio
import random

from layanify.db.session import Sessionmaker, WriteGate
from layanify.errors import log_failure
from layanify.media.storage import Storage
from layanify.observability import get_logger
from layanify.privacy.retention import Purge

log = get_logger(__name__)
PURGE_INTERVAL_SECONDS = 3600.0
# The first run waits a little after start, so a restart is not slowed by a purge.
FIRST_RUN_SECONDS = 60.0


class RetentionWorker:
    """Runs the retention purge every `interval_seconds` (with jitter, so processes do not align)."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        storage: Storage,
        *,
        gate: WriteGate | None = None,
        interval_seconds: float = PURGE_INTERVAL_SECONDS,
        first_run_seconds: float = FIRST_RUN_SECONDS,
    ) -> None:
        self._purge = Purge(sessionmaker, storage, gate=gate)
        self._interval = interval_seconds
        self._first = first_run_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Purge, then sleep the interval, until stopped."""
        wait = self._first
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait * random.uniform(0.9, 1.1))  # noqa: S311
                return
            except TimeoutError:
                pass
            try:
                await self._purge.all_workspaces()
            except Exception as exc:
                log_failure(log, "retention_purge_failed", exc)
            wait = self._interval
