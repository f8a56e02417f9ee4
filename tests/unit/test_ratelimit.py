"""Send pacing: slots per number are evenly spaced, shared through Redis, and never bunch up."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid

import pytest
import redis.asyncio as redis_async

from layanify.ratelimit import MemorySpacer, RedisSpacer, SendPacer, paced_rate, parse_rate, storage_for

REDIS_URL = os.environ.get("LAYANIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_the_pacer_keeps_a_margin_under_every_limit() -> None:
    assert paced_rate(80) == 77
    assert paced_rate(1000) == 970
    assert paced_rate(5) == 4
    assert paced_rate(1) == 1


async def grants(pacer: SendPacer, number_id: int, per_second: int, count: int) -> list[float]:
    """When each of `count` concurrent senders got its slot."""
    times: list[float] = []

    async def one() -> None:
        assert await pacer.number_turn(number_id, per_second, within=30)
        times.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(count)))
    return sorted(times)


def busiest_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_concurrent_senders_are_spaced_not_bunched() -> None:
    pacer = SendPacer(storage_for(None), recipient_rate=parse_rate("10 per minute"), spacer=MemorySpacer())
    times = await grants(pacer, 1, 20, 30)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.8 / 19  # about 1/19 s apart, never a burst
    assert busiest_second(times) <= 20
    assert times[-1] - times[0] == pytest.approx(29 / 19, abs=0.15)


async def test_a_turn_too_far_away_is_refused_without_queueing() -> None:
    spacer = MemorySpacer()
    assert await spacer.turn("n", 0.2, within=5)
    queued = [asyncio.create_task(spacer.turn("n", 0.2, within=5)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not await spacer.turn("n", 0.2, within=0.3)  # three ahead of it: 0.6 s away
    assert await asyncio.gather(*queued) == [True, True, True]


async def test_after_an_event_loop_pause_the_waiting_senders_do_not_burst() -> None:
    spacer = MemorySpacer()
    times: list[float] = []

    async def sender() -> None:
        assert await spacer.turn("n", 0.1, within=5)
        times.append(time.monotonic())

    async def pause() -> None:
        await asyncio.sleep(0.15)
        time.sleep(0.35)  # noqa: ASYNC251 - the event loop stalls, on purpose

    await asyncio.gather(pause(), *(sender() for _ in range(6)))
    gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
    # Turns scheduled ahead of time would all be due after the pause and go at once.
    assert min(gaps) >= 0.09


async def test_the_recipient_pair_rate_allows_a_short_burst_then_waits() -> None:
    pacer = SendPacer(storage_for(None), recipient_rate=parse_rate("3 per minute"))
    for _ in range(3):
        assert await pacer.recipient_turn(1, "6281234567890", within=0.1)
    assert not await pacer.recipient_turn(1, "6281234567890", within=0.1)
    assert await pacer.recipient_turn(1, "6289876543210", within=0.1)  # another customer is not affected


@pytest.fixture
async def redis_url() -> str:
    client = redis_async.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis_async.RedisError) as exc:
        pytest.skip(f"REDIS UNAVAILABLE at {REDIS_URL}: {exc} (`.ci/run` starts it)")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_two_processes_share_one_budget_through_redis(redis_url: str) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    spacers = [RedisSpacer(redis_url), RedisSpacer(redis_url)]
    pacers = [
        SendPacer(
            storage_for(redis_url), recipient_rate=parse_rate("10 per minute"), spacer=s, namespace=namespace
        )
        for s in spacers
    ]
    try:
        both = await asyncio.gather(grants(pacers[0], 7, 10, 10), grants(pacers[1], 7, 10, 10))
        times = sorted(both[0] + both[1])
        assert busiest_second(times) <= 10
        assert times[-1] - times[0] == pytest.approx(19 / 9, abs=0.25)
    finally:
        for spacer in spacers:
            await spacer.aclose()


async def test_a_process_woken_late_takes_a_later_slot_instead_of_bunching(redis_url: str) -> None:
    key = f"test-{uuid.uuid4().hex}:number:1"
    overslept: list[float] = []

    async def descheduled_once(seconds: float) -> None:
        """The first wake-up of this 'process' comes 130 ms late, as on an oversubscribed machine."""
        extra = 0.13 if not overslept else 0.0
        overslept.append(extra)
        await asyncio.sleep(seconds + extra)

    on_time, late = RedisSpacer(redis_url), RedisSpacer(redis_url, sleep=descheduled_once)
    sends: list[tuple[float, str]] = []

    async def steady() -> None:
        for _ in range(8):
            assert await on_time.turn(key, 0.1, within=5)
            sends.append((time.monotonic(), "on time"))

    async def starved() -> None:
        await asyncio.sleep(0.05)
        assert await late.turn(key, 0.1, within=5)
        sends.append((time.monotonic(), "late"))

    try:
        await asyncio.gather(steady(), starved())
    finally:
        await on_time.aclose()
        await late.aclose()
    times = sorted(at for at, _ in sends)
    assert late.late_retakes >= 1
    # Sending at the late wake-up would have put two sends ~30 ms apart; the retaken slot keeps the grid
    # (every send within half an interval of its slot).
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.05
    assert busiest_second(times) <= 10
