"""Run the simulator as a server, seeded with a demo data set (the `layanify simulator` command)."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn

from layanify.runtime import freeze_startup_heap
from layanify.simulator.app import Simulator
from layanify.simulator.config import SimulatorConfig

DEMO_PHONE_NUMBER_ID = "106540352242922"
DEMO_WABA_ID = "102290129340398"
DEMO_DISPLAY_NUMBER = "15550783881"
DEMO_TOKEN = "simulator-token"  # noqa: S105 - the demo number's well-known token


@dataclass(frozen=True)
class NumberSeed:
    """A business number to register at start."""

    phone_number_id: str = DEMO_PHONE_NUMBER_ID
    waba_id: str = DEMO_WABA_ID
    token: str = DEMO_TOKEN
    display_phone_number: str = DEMO_DISPLAY_NUMBER
    verified_name: str = "Layanify Demo"


def seed_demo(sim: Simulator, numbers: list[NumberSeed] | None = None) -> None:
    """Register the numbers (the demo number by default), two templates per WABA and two customers."""
    for seed in numbers or [NumberSeed()]:
        sim.add_number(
            seed.phone_number_id,
            waba_id=seed.waba_id,
            token=seed.token,
            display_phone_number=seed.display_phone_number,
            verified_name=seed.verified_name,
        )
        sim.add_template(seed.waba_id, name="hello_world", language="en_US", body_text="Hello World")
        sim.add_template(
            seed.waba_id,
            name="order_update",
            language="id",
            body_params=2,
            body_text="Halo {{1}}, pesanan {{2}} sudah dikirim.",
        )
    now = datetime.now(UTC)
    sim.add_customer("6281234567890", name="Budi Santoso", last_message_at=now)
    sim.add_customer("6289876543210", name="Siti Rahma")


def tune_gc() -> None:
    """Collect garbage less often (the simulator's own process only).

    The simulator keeps many long-lived objects (messages, logs); with the default thresholds a third
    of a send's time went to the collector. But no pass may be long: requests that queue during one are
    handled (and logged) in a bunch, and a number's 1 s window then counts more sends than were paced.
    Measured on a busy machine: with (100,000, 50, 100) young passes took 45-90 ms, with (10,000, 50,
    100) a middle pass took 110 ms. The youngest generation is collected every 10,000 allocations and
    the middle one every 5 of those; full passes wait for 200 middle ones.
    """
    freeze_startup_heap()
    gc.set_threshold(10_000, 5, 200)


def run_simulator(
    *, host: str, port: int, config: SimulatorConfig, numbers: list[NumberSeed] | None = None
) -> None:
    """Serve the simulator with uvicorn (uvloop, httptools, no access log), seeded with demo data.

    Options the `layanify simulator` command should expose (each maps to a SimulatorConfig field or
    an argument here; faults can also come from LAYANIFY_SIMULATOR_* variables via
    SimulatorConfig.from_env()):
      --host (default 127.0.0.1: the control API has no auth, keep it on loopback), --port (8090),
      --callback-url (the product's webhook URL, e.g. http://127.0.0.1:8000/api/webhooks/whatsapp),
      --app-secret, --token (the demo number's access token), --phone-number-id, --waba-id,
      --status-delays "0.2,1.0,3.0", --no-auto-read, --rate-limit (per second, 0 = off),
      --latency-ms, --error-rate-5xx, --timeout-rate, --duplicate-rate, --reorder, --seed.
    """
    if config.public_url is None:
        config.public_url = f"http://{host}:{port}"
    sim = Simulator(config)
    seed_demo(sim, numbers)
    tune_gc()
    uvicorn.run(
        sim.app, host=host, port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )
