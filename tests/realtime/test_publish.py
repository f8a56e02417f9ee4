"""Publishing after the commit: never for a rolled-back unit of work, once per event, in order."""

from __future__ import annotations

import asyncio

import pytest

from layanify.db.session import Sessionmaker, unit_of_work
from layanify.realtime.events import CONVERSATION_UPDATED, MESSAGE_CREATED
from layanify.realtime.publish import announce_message_created, publish_after_commit
from tests.realtime.conftest import BrokerFactory

SHOP = 7


async def test_a_rolled_back_unit_of_work_publishes_nothing(
    make_broker: BrokerFactory, sessionmaker: Sessionmaker
) -> None:
    broker = make_broker()
    subscription = broker.subscribe(SHOP, last_event_id=await broker.latest_id(SHOP))

    async def change_then_fail() -> None:
        async with unit_of_work(sessionmaker) as session:
            data = {"conversation_id": 1, "message_id": 1}
            publish_after_commit(session, broker, SHOP, MESSAGE_CREATED, data)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await change_then_fail()
    async with unit_of_work(sessionmaker) as session:
        publish_after_commit(session, broker, SHOP, MESSAGE_CREATED, {"conversation_id": 1, "message_id": 2})
    async with asyncio.timeout(5):
        event = await anext(subscription)
    assert event.data == {"conversation_id": 1, "message_id": 2}  # the rolled-back one never went out
    await subscription.aclose()


async def test_events_wait_for_the_commit_and_go_out_once_each_in_order(
    make_broker: BrokerFactory, sessionmaker: Sessionmaker
) -> None:
    broker = make_broker()
    position = await broker.latest_id(SHOP)
    async with unit_of_work(sessionmaker) as session:
        announce_message_created(session, broker, workspace_id=SHOP, conversation_id=3, message_id=10)
        announce_message_created(session, broker, workspace_id=SHOP, conversation_id=3, message_id=11)
        assert await broker.latest_id(SHOP) == position  # nothing before the commit
    subscription = broker.subscribe(SHOP, last_event_id=position)
    async with asyncio.timeout(5):
        events = [await anext(subscription) for _ in range(3)]
    assert [(e.type, e.data) for e in events] == [
        (MESSAGE_CREATED, {"conversation_id": 3, "message_id": 10}),
        (CONVERSATION_UPDATED, {"conversation_id": 3}),  # once, though both messages announced it
        (MESSAGE_CREATED, {"conversation_id": 3, "message_id": 11}),
    ]
    assert await broker.latest_id(SHOP) == events[-1].id
    await subscription.aclose()


async def test_without_a_broker_nothing_is_published(sessionmaker: Sessionmaker) -> None:
    async with unit_of_work(sessionmaker) as session:
        publish_after_commit(session, None, SHOP, MESSAGE_CREATED, {"conversation_id": 1, "message_id": 1})
