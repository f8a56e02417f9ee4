"""Connection monitoring: every number's token and ids are checked against Meta periodically."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from layanify.config import Settings
from layanify.crypto.keyring import Keyring
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.errors import log_failure
from layanify.numbers import connection, repository
from layanify.numbers.models import WhatsAppNumber
from layanify.observability import get_logger
from layanify.whatsapp.client import GraphClient

log = get_logger(__name__)


class ConnectionMonitor:
    """Tests each connected number every `LAYANIFY_CONNECTION_CHECK_SECONDS` and stores the result."""

    def __init__(
        self,
        sessionmaker: Sessionmaker,
        settings: Settings,
        keyring: Keyring,
        client: GraphClient,
        *,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._keyring = keyring
        self._client = client
        self._on_connected = on_connected

    async def run(self, stop: asyncio.Event) -> None:
        """Check all numbers, then sleep the interval (with jitter so processes do not align)."""
        interval = self._settings.connection_check_seconds
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval * random.uniform(0.9, 1.1))  # noqa: S311
                return
            except TimeoutError:
                pass
            try:
                await self.check_all()
            except Exception as exc:
                log_failure(log, "connection_check_failed", exc)

    async def check_all(self) -> int:
        """Test every number that has a token; returns how many were checked."""
        async with unit_of_work(self._sessionmaker) as session:
            ids = [n.id for n in await repository.all_connectable(session)]
        for number_id in ids:
            await self.check(number_id)
        return len(ids)

    async def check(self, number_id: int) -> None:
        """Test one number in its own unit of work (a slow Meta answer holds no other number's lock)."""
        async with unit_of_work(self._sessionmaker) as session:
            number = await session.get(WhatsAppNumber, number_id)
            if number is None or number.deleted_at is not None:
                return
            was = number.connection_state
            report = await connection.test_connection(
                session,
                number,
                self._client,
                self._keyring,
                default_rate=self._settings.rate_limit_per_second,
            )
        if was != report.number.connection_state:
            log.info(
                "number_connection_changed", number_id=number_id, was=was, now=report.number.connection_state
            )
        if report.number.connection_state == "connected" and was != "connected" and self._on_connected:
            self._on_connected()
