"""Send pacing: a per-number rate limit and a per-recipient pair rate, shared through Redis when set.

- Per number, sends are *spaced* (GCRA: each slot `1/rate` after the previous one), not counted in a
  window. A moving window lets a whole second's budget go at once whenever it slides; when the
  sending process is briefly starved, the tail of one burst and the head of the next reach Meta in
  the same second. Spaced sends cannot bunch up like that (docs/decisions.md, 21).
- Per recipient, the `limits` library's moving window ("10 per minute") allows the short bursts a
  conversation has, as Meta's pair rate does.

In one process both live in memory; with `LAYANIFY_REDIS_URL` both live in Redis, so every worker
process draws from the same budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis_async
from limits import RateLimitItem, RateLimitItemPerSecond, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from layanify.config import Settings

# Never sleep less than this between two tries: a tight loop would only burn CPU.
_MIN_WAIT = 0.002


def storage_for(redis_url: str | None) -> Storage:
    """Redis-backed windows when a Redis URL is configured, in-process memory otherwise.

    Redis's failures arrive as `limits.errors.StorageError` (whatever client `limits` uses underneath),
    which a request answers 503 with Retry-After (`errors.is_transient`).
    """
    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    storage = storage_from_string(f"async+{scheme}://{rest}", wrap_exceptions=True)
    assert isinstance(storage, Storage)
    return storage


def rate_per_second(amount: int) -> RateLimitItem:
    """`amount` per second (Meta's throughput limit is stated per second)."""
    return RateLimitItemPerSecond(amount)


def parse_rate(value: str) -> RateLimitItem:
    """A rate written as `limits` reads it, e.g. "10 per minute" or "1/6 seconds"."""
    return parse(value)


def paced_rate(per_second: int) -> int:
    """What the pacer lets through per second for a limit: 3% (at least one) below it.

    Measured with bench/send_throughput.py: at 2% under (79/s for 80), an event-loop pause of a few
    tens of milliseconds let two late sends land beside on-time ones, and the simulator counted 81 in
    one second. 3% under (77/s) leaves room for such a pause.
    """
    return max(1, min(per_second - 1, int(per_second * 0.97)))


class MemoryWindows:
    """Moving windows ("10 per minute") in this process's memory, for the pair rate without Redis.

    limits' async MemoryStorage sweeps every key, each through a thread hop, whenever a hit finds its
    last sweep done: with a distinct recipient per message that was about a tenth of the outbox's CPU
    (bench/outbox_cpu.py). Here a hit is a few deque operations, and keys idle for a whole window are
    dropped in one pass at most once per window length.
    """

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._longest = 0.0
        self._swept = time.monotonic()

    def hit(self, key: str, amount: int, seconds: float) -> float:
        """Take a place in the key's window: 0.0 when taken, else the seconds until one frees up."""
        now = time.monotonic()
        self._longest = max(self._longest, seconds)
        if now - self._swept > self._longest:
            cutoff = now - self._longest
            self._hits = {k: hits for k, hits in self._hits.items() if hits and hits[-1] > cutoff}
            self._swept = now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        start = now - seconds
        while hits and hits[0] <= start:
            hits.popleft()
        if len(hits) < amount:
            hits.append(now)
            return 0.0
        return max(hits[0] + seconds - now, 1e-6) if hits else seconds  # never 0.0: that means taken


class Spacer(Protocol):
    """Hands out evenly spaced send turns per key."""

    async def turn(self, key: str, interval: float, within: float) -> bool:
        """Wait for the key's next turn; False (without waiting) when it is more than `within` away."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemorySpacer:
    """Turns in this process's memory (one process sends for a number).

    Waiters queue in order on an ideal grid `interval` apart, so small wake-up delays do not add up
    (no drift). After a longer event-loop pause (more than half an interval late) the missed turns are
    dropped rather than caught up in a burst.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._next: dict[str, float] = {}  # the next turn on the grid
        self._last: dict[str, float] = {}  # when the last turn really began
        self._waiting: dict[str, int] = {}

    async def turn(self, key: str, interval: float, within: float) -> bool:
        """Queue for the key's next turn, unless the queue ahead is longer than `within`."""
        waiting = self._waiting.get(key, 0)
        if waiting * interval > within:
            return False
        self._waiting[key] = waiting + 1
        try:
            async with self._locks.setdefault(key, asyncio.Lock()):
                now = time.monotonic()
                slot = self._next.get(key, now)
                if now - slot > interval / 2:
                    # A pause: a new grid an interval after the last real turn, not the missed turns at once.
                    slot = max(now, self._last.get(key, now) + interval)
                if slot > now:
                    await asyncio.sleep(slot - now)
                self._last[key] = time.monotonic()
                self._next[key] = slot + interval
                return True
        finally:
            self._waiting[key] -= 1

    async def aclose(self) -> None:
        """Nothing to release."""


# Atomic in Redis, on Redis's clock (worker hosts' clocks may differ). Returns the wait, or -1.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
if slot - now > tonumber(ARGV[2]) then return '-1' end
local ttl = math.ceil((slot - now + interval) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.6f', slot + interval), 'PX', ttl)
return string.format('%.6f', slot - now)
"""


class RedisSpacer:
    """Slots in Redis, shared by every worker process.

    A process that wakes for its slot more than half an interval late (descheduled on a busy machine)
    does not send then: its send would land beside the other processes' on-time ones, and Meta would
    count both in the same second. It takes the next free slot instead, once; a second late wake-up
    sends anyway, so a starved process still makes progress.
    """

    LATE_RETRIES = 1

    def __init__(self, url: str, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._redis = redis_async.from_url(url)
        self._script = self._redis.register_script(_RESERVE)
        self._calls = asyncio.Semaphore(16)  # the connection pool is smaller than the crowd of waiters
        self._sleep = sleep
        self.late_retakes = 0  # slots given up for a later one (a busy machine; seen in the bench)

    async def reserve(self, key: str, interval: float, within: float) -> float | None:
        """Reserve the key's next slot in one round trip: seconds to wait, or None beyond `within`."""
        async with self._calls:
            wait = float(await self._script(keys=[key], args=[repr(interval), repr(within)]))
        return None if wait < 0 else wait

    async def turn(self, key: str, interval: float, within: float) -> bool:
        """Reserve the next slot shared by every process, then wait for it (again, if woken late)."""
        loop = asyncio.get_running_loop()
        retries = self.LATE_RETRIES
        while True:
            wait = await self.reserve(key, interval, within)
            if wait is None:
                return False
            due = loop.time() + wait
            if wait > 0:
                await self._sleep(wait)
            if loop.time() - due <= interval / 2 or retries == 0:
                return True
            retries -= 1
            self.late_retakes += 1

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def spacer_for(redis_url: str | None) -> Spacer:
    """Redis-backed slots when a Redis URL is configured, in-process memory otherwise."""
    return RedisSpacer(redis_url) if redis_url else MemorySpacer()


class SendPacer:
    """Waits until a number may send another message, and until a recipient may receive one."""

    def __init__(
        self,
        storage: Storage,
        *,
        recipient_rate: RateLimitItem,
        spacer: Spacer | None = None,
        namespace: str = "layanify",
        max_concurrent_calls: int = 16,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._storage = storage
        # Without Redis the pair-rate windows live in plain memory (see MemoryWindows), not in limits'.
        self._windows = MemoryWindows() if isinstance(storage, MemoryStorage) else None
        self._spacer: Spacer = spacer or MemorySpacer()
        self._recipient_rate = recipient_rate
        self._namespace = namespace
        # Hundreds of claimed messages wait for their turn at once; the Redis clients' connection pools
        # are smaller (an unbounded crowd stalled every worker in the bench), so calls take turns.
        self._calls = asyncio.Semaphore(max_concurrent_calls)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPacer:
        """The pacer the settings describe: in memory, or shared through LAYANIFY_REDIS_URL."""
        return cls(
            storage_for(settings.redis_url),
            recipient_rate=parse_rate(settings.pair_rate),
            spacer=spacer_for(settings.redis_url),
        )

    async def _take(self, item: RateLimitItem, *key: str, deadline: float) -> bool:
        """Hit `item` for `key`, sleeping until the window has room or `deadline` (monotonic) passes."""
        if self._windows is not None:
            name, amount, seconds = item.key_for(self._namespace, *key), item.amount, item.get_expiry()
            while True:
                wait = self._windows.hit(name, amount, seconds)
                if not wait:
                    return True
                wait = max(_MIN_WAIT, wait)
                if time.monotonic() + wait > deadline:
                    return False
                await asyncio.sleep(wait)
        while True:
            async with self._calls:
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
        """Wait for the number's next send slot; False when none is free within `within` seconds.

        Slots are `1 / paced_rate(per_second)` apart: a little under the limit, because requests reach
        Meta a few milliseconds apart from when their slot came, and evenly spaced slots at exactly the
        limit would then show one too many in some second on Meta's side.
        """
        interval = 1.0 / paced_rate(per_second)
        return await self._spacer.turn(f"{self._namespace}:number:{number_id}", interval, within)

    async def aclose(self) -> None:
        """Release the spacer's connections."""
        await self._spacer.aclose()

    async def check(self) -> bool:
        """True when the storage answers (Redis reachable)."""
        return bool(await self._storage.check())
