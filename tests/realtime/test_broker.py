"""Both brokers, through their public interface: fan-out, isolation, replay, resync, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from layanify.realtime.broker import Event, Publication
from layanify.realtime.events import RESYNC, parse_id
from tests.realtime.conftest import BrokerFactory

TIMEOUT = 5.0
SHOP = 1
OTHER_SHOP = 2


async def take(subscription: AsyncGenerator[Event, None], n: int) -> list[Event]:
    """The next `n` events, or fail within the timeout."""
    async with asyncio.timeout(TIMEOUT):
        return [await anext(subscription) for _ in range(n)]


async def test_every_subscriber_of_a_workspace_gets_every_event_in_order(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    position = await broker.latest_id(SHOP)
    first = broker.subscribe(SHOP, last_event_id=position)
    second = broker.subscribe(SHOP, last_event_id=position)
    ids = [await broker.publish(SHOP, "message.created", {"message_id": n}) for n in (1, 2, 3)]

    for subscription in (first, second):
        events = await take(subscription, 3)
        assert [e.id for e in events] == ids
        assert [e.data["message_id"] for e in events] == [1, 2, 3]
        assert {(e.workspace_id, e.type) for e in events} == {(SHOP, "message.created")}
        await subscription.aclose()
    assert sorted(ids, key=parse_id) == ids  # ids increase


async def test_a_new_subscriber_without_an_id_gets_only_what_is_published_after_it(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker()
    await broker.publish(SHOP, "message.created", {"message_id": 1})
    subscription = broker.subscribe(SHOP)
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0.2)  # let it reach its wait
    await broker.publish(SHOP, "message.created", {"message_id": 2})
    event = await asyncio.wait_for(waiting, TIMEOUT)
    assert event.data == {"message_id": 2}
    await subscription.aclose()


async def test_a_workspace_never_sees_another_workspaces_events(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    theirs = broker.subscribe(OTHER_SHOP, last_event_id=await broker.latest_id(OTHER_SHOP))
    await broker.publish_many([Publication(SHOP, "message.created", {"message_id": n}) for n in range(5)])
    await broker.publish(OTHER_SHOP, "conversation.updated", {"conversation_id": 9})

    [event] = await take(theirs, 1)
    assert (event.workspace_id, event.type) == (OTHER_SHOP, "conversation.updated")
    assert event.data == {"conversation_id": 9}
    await theirs.aclose()


async def test_a_subscriber_naming_its_last_event_gets_the_later_ones_then_live_ones(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker()
    ids = await broker.publish_many(
        [Publication(SHOP, "message.created", {"message_id": n}) for n in (1, 2, 3)]
    )
    subscription = broker.subscribe(SHOP, last_event_id=ids[0])
    replayed = await take(subscription, 2)
    assert [e.id for e in replayed] == ids[1:]
    live = await broker.publish(SHOP, "message.updated", {"message_id": 3, "status": "read"})
    [event] = await take(subscription, 1)
    assert (event.id, event.type) == (live, "message.updated")
    await subscription.aclose()


async def test_an_id_that_fell_out_of_the_buffer_gets_resync_then_live_events(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker(buffer_size=10)
    position = await broker.latest_id(SHOP)
    # Redis trims whole stream nodes (100 entries): publish enough that the oldest surely go.
    await broker.publish_many([Publication(SHOP, "message.created", {"message_id": n}) for n in range(300)])
    subscription = broker.subscribe(SHOP, last_event_id=position)
    [resync] = await take(subscription, 1)
    assert resync.type == RESYNC
    assert resync.data == {"reason": "events_dropped"}
    assert resync.id == await broker.latest_id(SHOP)
    after = await broker.publish(SHOP, "conversation.updated", {"conversation_id": 1})
    [event] = await take(subscription, 1)
    assert event.id == after
    await subscription.aclose()


async def test_a_subscriber_left_behind_by_more_than_the_buffer_gets_resync(
    make_broker: BrokerFactory,
) -> None:
    broker = make_broker(buffer_size=10)
    subscription = broker.subscribe(SHOP, last_event_id=await broker.latest_id(SHOP))
    await broker.publish(SHOP, "message.created", {"message_id": 0})
    await take(subscription, 1)
    # A slow reader holds up no publisher: these go out while it reads nothing.
    async with asyncio.timeout(TIMEOUT):
        await broker.publish_many(
            [Publication(SHOP, "message.created", {"message_id": n}) for n in range(1, 301)]
        )
    [event] = await take(subscription, 1)
    assert event.type == RESYNC
    assert event.id == await broker.latest_id(SHOP)
    await subscription.aclose()


@pytest.mark.parametrize("unknown", ["not-an-id", "garbage", "99999999999999-5"])
async def test_an_unknown_id_gets_resync(make_broker: BrokerFactory, unknown: str) -> None:
    broker = make_broker()
    await broker.publish(SHOP, "message.created", {"message_id": 1})
    subscription = broker.subscribe(SHOP, last_event_id=unknown)
    [event] = await take(subscription, 1)
    assert (event.type, event.data) == (RESYNC, {"reason": "unknown_id"})
    assert event.id == await broker.latest_id(SHOP)
    await subscription.aclose()


async def test_closing_the_broker_ends_waiting_subscribers(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    subscription = broker.subscribe(SHOP, last_event_id=await broker.latest_id(SHOP))
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0.1)
    await broker.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, TIMEOUT)
    await broker.aclose()  # idempotent


async def test_a_consumer_that_stops_waiting_is_gone_at_once(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    subscription = broker.subscribe(SHOP, last_event_id=await broker.latest_id(SHOP))
    waiting = asyncio.ensure_future(anext(subscription))
    await asyncio.sleep(0.1)
    waiting.cancel()
    async with asyncio.timeout(TIMEOUT):
        await asyncio.wait([waiting])
        await subscription.aclose()
    assert waiting.cancelled()
    # The broker carries on for everyone else.
    other = broker.subscribe(SHOP, last_event_id=await broker.latest_id(SHOP))
    event_id = await broker.publish(SHOP, "message.created", {"message_id": 1})
    assert [e.id for e in await take(other, 1)] == [event_id]
    await other.aclose()
