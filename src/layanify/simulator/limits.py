"""Token buckets for Meta's per-number throughput and per-customer pair rate."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `rate` tokens per second; take() spends one."""

    __slots__ = ("_clock", "_stamp", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    def take(self) -> bool:
        """Spend a token if one is available."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Limits:
    """Per-number throughput buckets and per-(number, customer) pair-rate buckets."""

    def __init__(
        self,
        *,
        per_second: float,
        burst_seconds: float,
        pair_burst: int,
        pair_per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.burst_seconds = burst_seconds
        self.pair_burst = pair_burst
        self.pair_per_seconds = pair_per_seconds
        self._clock = clock
        self._numbers: dict[str, TokenBucket] = {}
        self._pairs: dict[tuple[str, str], TokenBucket] = {}

    def reset(self) -> None:
        """Forget every bucket (after the limits changed)."""
        self._numbers.clear()
        self._pairs.clear()

    def number_allows(self, phone_number_id: str) -> bool:
        """Whether the number may send one more message now."""
        if self.per_second <= 0:
            return True
        bucket = self._numbers.get(phone_number_id)
        if bucket is None:
            capacity = max(1.0, self.per_second * self.burst_seconds)
            bucket = self._numbers[phone_number_id] = TokenBucket(self.per_second, capacity, self._clock)
        return bucket.take()

    def pair_allows(self, phone_number_id: str, wa_id: str) -> bool:
        """Whether the number may send one more message to this customer now."""
        if self.pair_burst <= 0:
            return True
        key = (phone_number_id, wa_id)
        bucket = self._pairs.get(key)
        if bucket is None:
            rate = 1.0 / self.pair_per_seconds if self.pair_per_seconds > 0 else float("inf")
            bucket = self._pairs[key] = TokenBucket(rate, float(self.pair_burst), self._clock)
        return bucket.take()
