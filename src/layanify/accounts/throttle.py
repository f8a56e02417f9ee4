"""Login throttling: failed logins lock the email for a while, and slow down a spraying address.

- Per email: `login_max_failures` failures within `login_failure_window_seconds` lock the email for
  `login_lockout_seconds`. While locked, even the right password is refused. A success clears the count.
  Emails that belong to nobody are counted and locked the same way, so the answers never reveal
  whether an account exists. Keys hold a digest of the email, never the email.
- Per client address: `login_ip_max_failures` failures (any emails) within the same window refuse
  further logins from it until the oldest failure leaves the window (password spraying across many
  emails from one address).

The counters live in `limits`' storage: this process's memory, or Redis with `LAYANIFY_REDIS_URL`,
so every process behind a load balancer shares them.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from layanify.config import Settings
from layanify.ratelimit import storage_for

_NAMESPACE = "layanify-login"


@dataclass(frozen=True)
class Refusal:
    """Why logins are refused for now, and for how long."""

    reason: Literal["locked", "ip_throttled"]
    retry_after: int  # whole seconds, at least 1

    @property
    def until(self) -> datetime:
        """When logins are accepted again."""
        return datetime.now(UTC) + timedelta(seconds=self.retry_after)

    @property
    def message(self) -> str:
        """A sentence for the API's answer (the UI has its own, translated)."""
        wait = _wait_words(self.retry_after)
        at = self.until.strftime("%Y-%m-%d %H:%M UTC")
        if self.reason == "locked":
            return f"Too many failed logins for this email: try again in {wait} (after {at})."
        return f"Too many failed logins from your network: try again in {wait} (after {at})."


def _wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def email_key(email: str) -> str:
    """The counter key of an email: a digest, so no email is written to the shared storage."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32]


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class LoginThrottle:
    """Counts failed logins per email and per client address, and says when to refuse one."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_failures: int,
        window_seconds: int,
        lockout_seconds: int,
        ip_max_failures: int,
    ) -> None:
        self._storage = storage
        self._moving = MovingWindowRateLimiter(storage)
        self._fixed = FixedWindowRateLimiter(storage)
        self._failures: RateLimitItem = RateLimitItemPerSecond(max_failures, window_seconds, _NAMESPACE)
        self._ip_failures: RateLimitItem = RateLimitItemPerSecond(ip_max_failures, window_seconds, _NAMESPACE)
        # One "hit" per lockout: the fixed window starts with it and is full until it expires.
        self._lock: RateLimitItem = RateLimitItemPerSecond(1, lockout_seconds, _NAMESPACE)
        self._lockout_seconds = lockout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        """The throttle the settings describe (in memory, or shared through Redis)."""
        return cls(
            storage_for(settings.redis_url),
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
            lockout_seconds=settings.login_lockout_seconds,
            ip_max_failures=settings.login_ip_max_failures,
        )

    async def refusal(self, email: str, ip: str | None) -> Refusal | None:
        """Why a login for this email from this address is refused before the password is looked at."""
        key = email_key(email)
        if not await self._fixed.test(self._lock, "lock", key):
            stats = await self._fixed.get_window_stats(self._lock, "lock", key)
            return Refusal("locked", _seconds_until(stats.reset_time))
        if ip and not await self._moving.test(self._ip_failures, "ip", ip):
            stats = await self._moving.get_window_stats(self._ip_failures, "ip", ip)
            return Refusal("ip_throttled", _seconds_until(stats.reset_time))
        return None

    async def failed(self, email: str, ip: str | None) -> Refusal | None:
        """Count a failed login; the refusal it starts when it reached a limit (else None)."""
        key = email_key(email)
        if ip:
            await self._moving.hit(self._ip_failures, "ip", ip)
        await self._moving.hit(self._failures, "email", key)
        if not await self._moving.test(self._failures, "email", key):
            # The lock starts now; after it, the email has a fresh set of tries.
            await self._moving.clear(self._failures, "email", key)
            await self._fixed.hit(self._lock, "lock", key)
            return Refusal("locked", self._lockout_seconds)
        if ip and not await self._moving.test(self._ip_failures, "ip", ip):
            stats = await self._moving.get_window_stats(self._ip_failures, "ip", ip)
            return Refusal("ip_throttled", _seconds_until(stats.reset_time))
        return None

    async def succeeded(self, email: str) -> None:
        """A right password: the email's failures are forgotten (the address's are not)."""
        await self._moving.clear(self._failures, "email", email_key(email))
