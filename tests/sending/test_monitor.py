"""Connection monitoring: the periodic check notices a revoked token and a fixed one."""

from __future__ import annotations

import httpx

from layanify.crypto.keyring import Keyring
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.numbers.models import WhatsAppNumber
from layanify.numbers.tasks import ConnectionMonitor
from layanify.simulator import Simulator
from layanify.whatsapp.client import GraphClient
from tests import factories
from tests.conftest import Tenant, make_settings
from tests.sending.conftest import TOKEN


async def state_of(sessionmaker: Sessionmaker, number_id: int) -> tuple[str, str | None]:
    async with unit_of_work(sessionmaker) as session:
        number = await session.get(WhatsAppNumber, number_id)
        assert number is not None
        return number.connection_state, number.connection_error


async def test_the_monitor_follows_the_tokens_fate(
    database_url: str, tenant: Tenant, simulator: Simulator, sessionmaker: Sessionmaker
) -> None:
    settings = make_settings(database_url)
    graph = GraphClient(
        base_url="http://sim.test",
        version="v23.0",
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator.app)),
    )
    woken: list[str] = []
    monitor = ConnectionMonitor(
        sessionmaker,
        settings,
        Keyring.from_setting(settings.encryption_keys.get_secret_value()),
        graph,
        on_connected=lambda: woken.append("outbox"),
    )
    try:
        assert await monitor.check_all() == 1
        assert await state_of(sessionmaker, tenant.number_id) == ("connected", None)
        assert woken == ["outbox"]  # unknown → connected wakes the paused queue

        simulator.revoke_token(TOKEN)
        await monitor.check_all()
        state, error = await state_of(sessionmaker, tenant.number_id)
        assert state == "disconnected"
        assert error is not None
        assert "token" in error.lower()

        simulator.add_number(
            factories.FIXTURE_PHONE_NUMBER_ID,
            waba_id=factories.FIXTURE_WABA_ID,
            token=TOKEN,
            display_phone_number=factories.FIXTURE_DISPLAY_NUMBER,
        )
        await monitor.check_all()
        assert await state_of(sessionmaker, tenant.number_id) == ("connected", None)
        assert woken == ["outbox", "outbox"]
    finally:
        await graph.aclose()
