"""Settings of the Cloud API simulator: delays, limits, retries and injected faults."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field

ENV_PREFIX = "LAYANIFY_SIMULATOR_"

# Fields that can be changed at run time through `Simulator.set_faults` or `PUT /_sim/faults`.
FAULT_FIELDS = (
    "latency_ms",
    "error_rate_5xx",
    "timeout_rate",
    "timeout_seconds",
    "duplicate_rate",
    "reorder",
    "throttle_next",
    "webhook_down",
)


class SimulatorConfig(BaseModel):
    """Everything the simulator can be told: secrets, realism knobs, limits and faults."""

    model_config = {"validate_assignment": True}

    app_secret: str = "simulator-app-secret"  # noqa: S105 - a local default, override it
    callback_url: str | None = None
    # Absolute base URL the simulator is reachable at; when set, inbound media webhooks carry a `url`.
    public_url: str | None = None

    # Seconds after an accepted send at which the sent, delivered and read statuses are emitted.
    status_delays: tuple[float, float, float] = (0.2, 1.0, 3.0)
    auto_read: bool = True
    window_hours: float = 24.0

    # Throughput per number: a token bucket refilled at this rate holding `rate_limit_burst_seconds`
    # worth of tokens (Meta measures throughput per second, so a 1 s burst is tolerated). <= 0 disables.
    rate_limit_per_second: float = 80.0
    rate_limit_burst_seconds: float = 1.0
    # Pair rate (one business number -> one customer): Meta documents ~1 message per 6 s with bursts of
    # up to 45 borrowed from the future. A token bucket of `pair_rate_burst` refilled one per
    # `pair_rate_per_seconds`. pair_rate_burst <= 0 disables.
    pair_rate_burst: int = 45
    pair_rate_per_seconds: float = 6.0

    # Webhook delivery: Meta retries failed deliveries with exponential backoff for days.
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 300.0
    webhook_max_attempts: int = 15
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 8
    # Status events of one number due at the same moment are combined into one POST, up to this many
    # (Meta does batch statuses under load). 1 = one status per POST; raise it for load tests.
    webhook_batch_max: int = 1

    # Faults.
    latency_ms: float = 0.0
    error_rate_5xx: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout_seconds: float = 35.0
    duplicate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    reorder: bool = False
    throttle_next: int = 0
    webhook_down: bool = False

    seed: int | None = None
    request_log_limit: int = 10_000
    webhook_log_limit: int = 10_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> SimulatorConfig:
        """A config from `LAYANIFY_SIMULATOR_<FIELD>` variables (e.g. LAYANIFY_SIMULATOR_LATENCY_MS=50)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "status_delays":
                values[name] = tuple(float(part) for part in raw.split(","))
            elif info.annotation is bool:
                values[name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            else:
                values[name] = raw
        values.update(overrides)
        return cls.model_validate(values)
