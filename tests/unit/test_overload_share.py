"""In-process processing takes at most a share of the time while webhooks arrive far faster than it can
process them, and all it needs otherwise."""

from __future__ import annotations

import asyncio

import pytest

from layanify.config import Settings
from layanify.webhooks.tasks import BatchSizer, WebhookWorker


def worker(
    rate: float | None,
    *,
    per_event: float | None = 0.0005,
    last_batch: float = 0.04,
    defer: float = 1.0,
    share: float = 0.5,
) -> WebhookWorker:
    """A worker whose sizer measured `per_event` seconds an event, after a batch of `last_batch` seconds,
    with webhooks arriving at `rate` a second (None: not in-process)."""
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        worker_max_defer_seconds=defer,
        worker_overload_share=share,
    )
    made = WebhookWorker(
        None,  # type: ignore[arg-type]  # no batch is run here
        settings,
        receipts_busy=lambda: False,
        receipt_rate=None if rate is None else (lambda: rate),
    )
    if per_event is not None:
        made._sizer.observe(100, 100 * per_event)
    made._last_batch_seconds = last_batch
    return made


def test_capacity_is_the_measured_events_a_second() -> None:
    sizer = BatchSizer(100, None)
    assert sizer.capacity() is None  # nothing measured yet
    sizer.observe(100, 0.05)
    assert sizer.capacity() == pytest.approx(2000)


def test_a_worker_that_can_keep_up_is_not_held_back() -> None:
    # 0.5 ms an event: 2,000 events/s. At 1,000 webhooks/s (the processing goal) and up to twice what it
    # can process, nothing is held back.
    assert worker(1000)._overload_rest() == 0
    assert worker(3999)._overload_rest() == 0


def test_far_beyond_what_it_can_process_batches_take_half_of_the_time() -> None:
    assert worker(9000, last_batch=0.04)._overload_rest() == pytest.approx(0.04)  # 40 ms, then 40 ms


def test_the_share_is_a_setting_and_one_means_no_limit() -> None:
    assert worker(9000, last_batch=0.04, share=0.25)._overload_rest() == pytest.approx(0.12)
    assert worker(9000, last_batch=0.04, share=1.0)._overload_rest() == 0


def test_separate_workers_and_unmeasured_ones_are_never_held_back() -> None:
    assert worker(None)._overload_rest() == 0  # `layanify worker`: a process of its own
    assert worker(9000, per_event=None)._overload_rest() == 0  # no batch measured yet
    assert worker(0)._overload_rest() == 0  # no webhook lately


async def test_the_rest_is_bounded_by_the_defer_limit_and_ends_at_shutdown() -> None:
    stop = asyncio.Event()
    held = worker(1e6, last_batch=30.0, defer=0.05)  # a rest of 30 s asked for, 50 ms allowed
    await asyncio.wait_for(held._let_receipts_go_first(stop), 5)

    stopping = worker(1e6, last_batch=30.0, defer=30.0)
    waiting = asyncio.create_task(stopping._let_receipts_go_first(stop))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # resting
    stop.set()
    await asyncio.wait_for(waiting, 5)  # shutdown does not wait the rest out
