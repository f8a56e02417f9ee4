"""Process tuning of the long-running commands."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from layanify import runtime


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_after_start_up_the_young_generation_is_collected_less_often_and_garbage_still_goes() -> None:
    runtime.freeze_startup_heap()
    assert gc.get_threshold()[0] == runtime.YOUNG_COLLECTION_THRESHOLD
    assert gc.get_freeze_count() > 0  # the start-up heap is out of the full passes

    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: reference counting alone never frees it
    del first, second
    assert gc.collect() > 0  # the collector still finds it
