"""The pair rate kept in this process's memory (no Redis): a moving window per number and recipient."""

from __future__ import annotations

import time

from layanify.ratelimit import MemoryWindows, SendPacer, parse_rate, storage_for


async def test_a_full_window_frees_up_as_its_oldest_send_ages_out() -> None:
    pacer = SendPacer(storage_for(None), recipient_rate=parse_rate("2 per second"))
    started = time.monotonic()
    assert await pacer.recipient_turn(1, "6281234567890", within=0.1)
    assert await pacer.recipient_turn(1, "6281234567890", within=0.1)
    assert not await pacer.recipient_turn(1, "6281234567890", within=0.1)  # refused without waiting
    assert time.monotonic() - started < 0.05
    assert await pacer.recipient_turn(2, "6281234567890", within=0.1)  # another number's window
    assert await pacer.recipient_turn(1, "6281234567890", within=2.0)  # waits for the oldest to age out
    assert 0.9 < time.monotonic() - started < 1.5


def test_idle_windows_are_dropped_once_per_window_length() -> None:
    windows = MemoryWindows()
    assert windows.hit("a", 1, 60.0) == 0.0
    assert 59.0 < windows.hit("a", 1, 60.0) <= 60.0  # the seconds until it frees up
    assert windows.hit("b", 1, 60.0) == 0.0
    windows._swept -= 61  # a window length later: the next hit sweeps
    for hits in windows._hits.values():
        hits[0] -= 61
    assert windows.hit("c", 1, 60.0) == 0.0
    assert set(windows._hits) == {"c"}
