"""How many webhook events a worker claims at once, so that a batch keeps to its time budget."""

from __future__ import annotations

import random
import statistics

from layanify.webhooks.tasks import BatchSizer


def run_batches(sizer: BatchSizer, fixed: float, per_event: float, rounds: int = 30) -> list[int]:
    """Feed the sizer batches that cost `fixed + n × per_event` seconds; the sizes it chose."""
    sizes = []
    for _ in range(rounds):
        size = sizer.size()
        sizes.append(size)
        sizer.observe(size, fixed + size * per_event)
    return sizes


def test_without_a_budget_batches_are_full() -> None:
    sizer = BatchSizer(100, None)
    assert run_batches(sizer, 0.011, 0.0003) == [100] * 30


def test_the_size_settles_where_overhead_plus_events_fit_the_budget() -> None:
    # Measured on SQLite: ~11 ms per batch whatever its size, ~0.24 ms per event.
    sizer = BatchSizer(100, 0.025)
    sizes = run_batches(sizer, 0.011, 0.00024)
    assert sizes[0] == 100  # nothing measured yet
    settled = sizes[-1]
    assert 0.011 + settled * 0.00024 <= 0.025 * 1.05
    assert settled >= (0.025 - 0.011) / 0.00024 * 0.9  # not smaller than needed: throughput matters
    # And it stays there, but for a batch twice as big now and then, which keeps the fit of the
    # batch's own overhead current.
    assert sorted(sizes[-10:])[-2] - min(sizes[-10:]) <= 2
    assert max(sizes[-10:]) <= min(2 * settled, 100)


def test_expensive_events_shrink_the_batch_but_never_below_the_minimum() -> None:
    sizer = BatchSizer(100, 0.025)
    assert run_batches(sizer, 0.030, 0.010)[-1] == BatchSizer.MINIMUM
    assert run_batches(BatchSizer(2, 0.025), 0.030, 0.010)[-1] == 2  # a configured maximum below it wins


def test_batches_are_full_while_no_receipt_arrives() -> None:
    rate = 0.0
    sizer = BatchSizer(100, 0.025, lambda: rate)
    assert run_batches(sizer, 0.011, 0.00024) == [100] * 30  # a backlog, nobody waiting: full batches
    rate = 5000.0
    assert statistics.median(run_batches(sizer, 0.011, 0.00024, rounds=10)) < 100


def test_a_batch_keeps_about_the_same_number_of_receipts_waiting() -> None:
    rate = 5000.0
    sizer = BatchSizer(500, 0.040, lambda: rate)
    assert sizer.budget() == 0.040  # 100 receipts would wait 20 ms: the budget itself holds
    fast = run_batches(sizer, 0.011, 0.0005)[-1]
    rate = 1000.0
    assert sizer.budget() == 0.1  # 100 receipts: 100 ms, no more than 2.5 × the budget
    slow = run_batches(sizer, 0.011, 0.0005)[-1]
    assert slow > 2 * fast  # fewer receipts arriving: longer batches, less overhead per event
    rate = 100.0
    assert sizer.budget() == 0.1
    assert BatchSizer(500, 0.040).budget() == 0.040  # a separate worker knows no rate: the budget


def test_a_change_in_cost_is_followed() -> None:
    sizer = BatchSizer(200, 0.025)
    cheap = run_batches(sizer, 0.005, 0.0001)[-1]
    dearer = run_batches(sizer, 0.005, 0.0004)[-1]
    assert cheap == 200
    assert dearer < 60
    assert sizer.size() == dearer


def test_empty_batches_teach_nothing() -> None:
    sizer = BatchSizer(100, 0.025)
    sizer.observe(0, 5.0)
    assert sizer.size() == 100


def test_on_a_slow_machine_the_batch_never_shrinks_until_overhead_is_most_of_it() -> None:
    # Measured on 2026-11-27's slower machine: the same ~dozen statements took ~30 ms a batch, ~1.1 ms
    # an event. Fitting 30 + n × 1.1 ms into 40 ms settled on batches of ~9 events: three quarters of
    # the time went to the batch's own statements, and a separate worker drained 189 messages/s.
    sizer = BatchSizer(100, 0.040)
    sizes = run_batches(sizer, 0.030, 0.0011)
    settled = statistics.median(sizes[-10:])
    assert settled * 0.0011 >= 0.030 * 0.95  # the events' share of a batch is at least the overhead's
    assert settled / (0.030 + settled * 0.0011) > 2 * 9 / (0.030 + 9 * 0.0011)  # > twice the old rate
    assert sorted(sizes[-10:])[-2] - min(sizes[-10:]) <= 2


def test_noisy_timings_still_settle_near_the_fitted_size() -> None:
    generator = random.Random(5)
    sizer = BatchSizer(100, 0.040)
    sizes = []
    for _ in range(60):
        size = sizer.size()
        sizes.append(size)
        sizer.observe(size, (0.030 + size * 0.0011) * generator.uniform(0.7, 1.3))
    assert 18 <= statistics.median(sizes[-20:]) <= 45  # ~27 without noise; never the collapse to ~9


def test_no_probe_the_moment_receipts_start_arriving() -> None:
    rate = 0.0
    sizer = BatchSizer(100, 0.040, lambda: rate)
    run_batches(sizer, 0.030, 0.0011)  # an idle server draining a backlog: full batches, all alike
    rate = 5000.0
    per_event = (0.030 + 100 * 0.0011) / 100  # what the full batches taught it
    assert sizer.size() == int(0.040 / per_event)  # the budget, not a batch twice as big, as webhooks come in
