"""SQLite: receipts wait in their own file until a worker moves them into the main one (decision 35)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from layanify.config import Settings
from layanify.db.base import utcnow
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.messaging.models import Message
from layanify.webhooks.ingest import ReceiptStage
from layanify.webhooks.models import WebhookEvent
from layanify.webhooks.tasks import WebhookWorker
from tests import factories
from tests.conftest import BACKEND, Tenant, WebhookPoster, stored_events, waiting_receipts

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="PostgreSQL stores receipts in webhook_events")


def text_message(i: int) -> dict[str, object]:
    return factories.text_message(
        f"wamid.handover-{i}", f"pesan {i}", wa_id=f"62813{i:07d}", timestamp=1764000000 + i
    )


def first_waiting_id(database_url: str) -> int:
    waiting, _ = ReceiptStage.at(Path(database_url.split(":///", 1)[1])).read(1, after=0)
    return waiting[0][0]


async def main_file_events(sessionmaker: Sessionmaker) -> list[WebhookEvent]:
    """What `webhook_events` holds, without moving anything first."""
    async with unit_of_work(sessionmaker) as session:
        return list((await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars())


async def message_wamids(sessionmaker: Sessionmaker) -> list[str | None]:
    async with unit_of_work(sessionmaker) as session:
        return sorted((await session.execute(select(Message.wamid))).scalars(), key=str)


async def test_a_receipt_waits_in_its_own_file_and_keeps_its_id_in_the_main_one(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, database_url: str, tenant: Tenant
) -> None:
    assert (await webhook.post(text_message(1))).status_code == 200
    assert waiting_receipts(database_url) == 1
    assert await main_file_events(sessionmaker) == []
    waiting_id = first_waiting_id(database_url)
    await webhook.process()
    events = await main_file_events(sessionmaker)
    assert [(e.id, e.status) for e in events] == [(waiting_id, "processed")]
    assert waiting_receipts(database_url) == 0
    assert await message_wamids(sessionmaker) == ["wamid.handover-1"]


async def process_then_stop_before_the_delete(webhook: WebhookPoster) -> int:
    """Process what waits, as a worker stopped between the main file's commit and the delete."""

    def stopped(self: ReceiptStage, through: int) -> None:
        raise OSError("killed between the main file's commit and the receipts file's delete")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReceiptStage, "forget", stopped)
        return await webhook.process()


async def test_a_hand_over_cut_off_before_the_receipts_file_forgot_is_not_repeated(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, database_url: str, tenant: Tenant
) -> None:
    for i in range(3):
        assert (await webhook.post(text_message(i))).status_code == 200

    assert await process_then_stop_before_the_delete(webhook) == 3
    assert waiting_receipts(database_url) == 3  # still there, already moved
    assert await webhook.process() == 0  # found moved: nothing added, nothing processed twice
    assert waiting_receipts(database_url) == 0
    events = await main_file_events(sessionmaker)
    assert [(e.status, e.attempts) for e in events] == [("processed", 1)] * 3
    assert await message_wamids(sessionmaker) == [f"wamid.handover-{i}" for i in range(3)]


async def test_an_id_taken_in_the_main_file_by_another_event_gets_a_new_one(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, database_url: str, tenant: Tenant
) -> None:
    assert (await webhook.post(text_message(7))).status_code == 200
    waiting_id = first_waiting_id(database_url)
    async with unit_of_work(sessionmaker) as session:  # stored around the receipts file, under that id
        now = utcnow()
        session.add(
            WebhookEvent(
                id=waiting_id,
                body=b'{"entry": []}',
                received_at=now,
                status="processed",
                attempts=1,
                next_attempt_at=now,
            )
        )
    await webhook.process()
    events = await stored_events(sessionmaker)
    assert len(events) == 2  # neither event lost
    moved = next(e for e in events if e.id != waiting_id)
    assert moved.id > waiting_id
    assert moved.status == "processed"
    assert await message_wamids(sessionmaker) == ["wamid.handover-7"]
    async with unit_of_work(sessionmaker) as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 2


async def test_a_batch_moves_no_more_receipts_than_it_may_claim(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, database_url: str, tenant: Tenant, settings: Settings
) -> None:
    for i in range(5):
        assert (await webhook.post(text_message(i))).status_code == 200
    worker = WebhookWorker(sessionmaker, settings.model_copy(update={"worker_batch_size": 2}))
    assert await worker.process_due_batch() == 2
    assert waiting_receipts(database_url) == 3  # a surge is moved batch by batch, not in one long one
    assert [e.status for e in await main_file_events(sessionmaker)] == ["processed", "processed"]
    while await worker.process_due_batch():
        pass
    assert waiting_receipts(database_url) == 0
    assert await message_wamids(sessionmaker) == [f"wamid.handover-{i}" for i in range(5)]


async def test_a_moved_receipt_whose_event_was_purged_before_the_file_forgot_it_stays_gone(
    webhook: WebhookPoster, sessionmaker: Sessionmaker, database_url: str, tenant: Tenant
) -> None:
    assert (await webhook.post(text_message(9))).status_code == 200

    assert await process_then_stop_before_the_delete(webhook) == 1
    async with unit_of_work(sessionmaker) as session:  # erased (or purged by retention) meanwhile
        await session.execute(delete(WebhookEvent))
        await session.execute(delete(Message))
    assert waiting_receipts(database_url) == 1
    assert await webhook.process() == 0  # below the hand-over mark: deleted, not moved again
    assert waiting_receipts(database_url) == 0
    assert await main_file_events(sessionmaker) == []
    assert await message_wamids(sessionmaker) == []
