"""Kill the real server process with SIGKILL and restart it: nothing acknowledged is ever lost."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.webhooks.models import WebhookEvent
from layanify.whatsapp.signature import sign
from tests import factories
from tests.conftest import APP_SECRET, Tenant, waiting_receipts
from tests.e2e.processes import server

pytestmark = pytest.mark.e2e


def signed(i: int) -> tuple[bytes, dict[str, str]]:
    body = factories.text_message(
        f"wamid.restart-{i}", f"pesan {i}", wa_id=f"62815{i:07d}", timestamp=1764000000 + i
    )
    raw = httpx.Request("POST", "http://x", json=body).content
    return raw, {"X-Hub-Signature-256": sign(APP_SECRET, raw), "Content-Type": "application/json"}


async def pending_events(sessionmaker: Sessionmaker) -> int:
    async with unit_of_work(sessionmaker) as session:
        query = select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "pending")
        return int(await session.scalar(query) or 0)


async def stored_wamids(sessionmaker: Sessionmaker) -> set[str | None]:
    async with unit_of_work(sessionmaker) as session:
        return set((await session.execute(select(Message.wamid))).scalars())


async def wait_for_drain(sessionmaker: Sessionmaker, database_url: str, within: float = 30.0) -> None:
    """Poll until no event is pending (the restarted server processes the backlog)."""
    async with asyncio.timeout(within):
        while await pending_events(sessionmaker) or waiting_receipts(database_url):  # noqa: ASYNC110 - the state is in another process
            await asyncio.sleep(0.1)


async def test_events_pending_when_killed_are_processed_after_restart(
    database_url: str, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    async with server(database_url, "--no-workers") as (process, base):
        async with httpx.AsyncClient(base_url=base) as http:
            for i in range(20):
                raw, headers = signed(i)
                assert (
                    await http.post("/api/webhooks/whatsapp", content=raw, headers=headers)
                ).status_code == 200
        process.kill()  # SIGKILL: no shutdown hooks run
        await process.wait()
    # Committed before each 200; on SQLite still in the receipts file, which the next server hands over.
    assert await pending_events(sessionmaker) + waiting_receipts(database_url) == 20
    async with server(database_url):
        await wait_for_drain(sessionmaker, database_url)
    assert await stored_wamids(sessionmaker) == {f"wamid.restart-{i}" for i in range(20)}


async def test_kill_during_load_loses_nothing_acknowledged_and_duplicates_nothing(
    database_url: str, sessionmaker: Sessionmaker, tenant: Tenant
) -> None:
    acknowledged: list[int] = []
    enough = asyncio.Event()
    async with server(database_url) as (process, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def post(i: int) -> None:
                raw, headers = signed(i)
                try:
                    response = await http.post("/api/webhooks/whatsapp", content=raw, headers=headers)
                except httpx.TransportError:
                    return  # the process died before answering: Meta would retry
                if response.status_code == 200:
                    acknowledged.append(i)
                    if len(acknowledged) >= 150:
                        enough.set()

            async def killer() -> None:
                await enough.wait()
                process.kill()  # mid-load: requests in flight, the in-process worker busy

            sem = asyncio.Semaphore(20)

            async def bounded(i: int) -> None:
                async with sem:
                    await post(i)

            await asyncio.gather(killer(), *(bounded(i) for i in range(400)))
        await process.wait()
    assert 150 <= len(acknowledged) < 400
    async with server(database_url):
        await wait_for_drain(sessionmaker, database_url)
    stored = await stored_wamids(sessionmaker)
    # Every acknowledged event was processed after the restart, each exactly once (wamids are unique).
    assert {f"wamid.restart-{i}" for i in acknowledged} <= stored
