"""Send pacing: a per-number rate limit and per-recipient spacing, shared through Redis when configured.

Built on the `limits` library's moving window: in any window of `per` seconds at most `amount` hits
pass, which is exactly the guarantee Meta's throughput limit asks for ("never more than 80 in any
second"). In one process the window lives in memory; with `LAYANIFY_REDIS_URL` it lives in Redis, so
every worker process draws from the same budget.
"""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

# Never sleep less than this between two tries: a tight loop would only burn CPU.
_MIN_WAIT = 0.002


def storage_for(redis_url: str | None) -> Storage:
    """Redis-backed windows when a Redis URL is configured, in-process memory otherwise."""
    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    storage = storage_from_string(f"async+{scheme}://{rest}")
    assert isinstance(storage, Storage)
    return storage


def rate_per_second(amount: int) -> RateLimitItem:
    """`amount` per second (Meta's throughput limit is stated per second)."""
    return RateLimitItemPerSecond(amount)


def parse_rate(value: str) -> RateLimitItem:
    """A rate written as `limits` reads it, e.g. "10 per minute" or "1/6 seconds"."""
    return parse(value)


def paced_rate(per_second: int) -> int:
    """What the pacer lets through per second for a limit: 2% (at least one) below it."""
    return max(1, per_second - max(1, per_second // 50))


class SendPacer:
    """Waits until a number may send another message, and until a recipient may receive one."""

    def __init__(
        self, storage: Storage, *, recipient_rate: RateLimitItem, namespace: str = "layanify"
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._storage = storage
        self._recipient_rate = recipient_rate
        self._namespace = namespace

    async def _take(self, item: RateLimitItem, *key: str, deadline: float) -> bool:
        """Hit `item` for `key`, sleeping until the window has room or `deadline` (monotonic) passes."""
        while True:
            if await self._limiter.hit(item, self._namespace, *key):
                return True
            stats = await self._limiter.get_window_stats(item, self._namespace, *key)
            wait = max(_MIN_WAIT, stats.reset_time - time.time())
            if time.monotonic() + wait > deadline:
                return False
            await asyncio.sleep(wait)

    async def recipient_turn(self, number_id: int, recipient: str, *, within: float) -> bool:
        """Take a slot in the recipient's pair-rate window; False when none frees up within `within` s."""
        return await self._take(
            self._recipient_rate, "pair", str(number_id), recipient, deadline=time.monotonic() + within
        )

    async def number_turn(self, number_id: int, per_second: int, *, within: float) -> bool:
        """Take one of the number's slots; False when none frees up within `within` s.

        The window holds `paced_rate(per_second)`, a little under the limit: requests reach Meta a few
        milliseconds apart from when they were counted, and a window filled to the exact limit would
        then show one too many in some second on Meta's side.
        """
        return await self._take(
            rate_per_second(paced_rate(per_second)),
            "number",
            str(number_id),
            deadline=time.monotonic() + within,
        )

    async def check(self) -> bool:
        """True when the storage answers (Redis reachable)."""
        return bool(await self._storage.check())
