"""Faults injected into Graph requests: latency, transient 5xx and hangs longer than a client timeout."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from layanify.simulator.config import FAULT_FIELDS, SimulatorConfig
from layanify.simulator.errors import GraphError, server_error


def fault_settings(config: SimulatorConfig) -> dict[str, Any]:
    """The current fault settings, as `GET /_sim/faults` shows them."""
    return {name: getattr(config, name) for name in FAULT_FIELDS}


def change_faults(config: SimulatorConfig, changes: dict[str, Any]) -> None:
    """Apply fault changes (validated; unknown names are a ValueError)."""
    unknown = sorted(set(changes) - set(FAULT_FIELDS))
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULT_FIELDS)}")
    for name, value in changes.items():
        setattr(config, name, value)


async def before_request(config: SimulatorConfig, rng: random.Random) -> GraphError | None:
    """Sleep the configured latency; a transient 500 to answer instead of handling, if one is drawn."""
    if config.latency_ms > 0:
        await asyncio.sleep(config.latency_ms / 1000)
    if config.error_rate_5xx > 0 and rng.random() < config.error_rate_5xx:
        return server_error()
    return None


def draws_timeout(config: SimulatorConfig, rng: random.Random) -> bool:
    """Whether this request should hang (after being handled: the client loses an accepted response)."""
    return config.timeout_rate > 0 and rng.random() < config.timeout_rate


def take_throttle(config: SimulatorConfig) -> bool:
    """Consume one of the `throttle_next` forced 130429 answers, if any are left."""
    if config.throttle_next > 0:
        config.throttle_next -= 1
        return True
    return False
