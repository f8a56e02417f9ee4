"""The one-command demo: the product on SQLite wired to an in-process Cloud API simulator.

Both servers run in one process and one event loop: the product on `--port` (default 8000), the
simulator on `--simulator-port` (default 8090). A demo workspace, owner and number are created (or
reused), a few customers start conversations through the simulator's webhooks — the same path real
messages take — and two of them keep chatting so the inbox stays alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from layanify.accounts import service as accounts
from layanify.automation import service as automation
from layanify.config import Settings
from layanify.crypto import content as content_crypto
from layanify.crypto.keyring import Keyring
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import unit_of_work
from layanify.numbers import connection
from layanify.numbers import repository as numbers_repository
from layanify.numbers import service as numbers
from layanify.numbers.schemas import NumberCreate
from layanify.observability import get_logger
from layanify.runtime import hand_over_the_gil_sooner
from layanify.simulator import Simulator, SimulatorConfig
from layanify.simulator.cli import (
    DEMO_DISPLAY_NUMBER,
    DEMO_PHONE_NUMBER_ID,
    DEMO_TOKEN,
    DEMO_WABA_ID,
    seed_demo,
)
from layanify.whatsapp.client import GraphClient

log = get_logger(__name__)

DEMO_EMAIL = "demo@layanify.local"
DEMO_PASSWORD = "layanify-demo"  # noqa: S105 - a published demo login on a local-only database
DEMO_WORKSPACE = "Toko Demo"
DEMO_APP_SECRET = "layanify-demo-app-secret"  # noqa: S105 - shared by the demo's two halves only
DEMO_VERIFY_TOKEN = "layanify-demo-verify-token"  # noqa: S105

# Customers of the demo and what they say (Bahasa Indonesia, as our users' customers would).
CUSTOMERS = {
    "6281234567890": "Budi Santoso",
    "6289876543210": "Siti Rahma",
    "6285712345678": "Andi Wijaya",
    "6281398765432": "Dewi Lestari",
}
OPENERS: list[tuple[str, dict[str, object]]] = [
    ("6281234567890", {"type": "text", "text": "Halo kak, pesanan saya #1021 sudah dikirim belum?"}),
    ("6289876543210", {"type": "text", "text": "Apakah toko buka hari Minggu?"}),
    ("6285712345678", {"type": "image", "caption": "Ini foto barang yang rusak"}),
    (
        "6281398765432",
        {"type": "location", "latitude": -6.2088, "longitude": 106.8456, "name": "Kantor saya"},
    ),
]
CHATTER: list[dict[str, object]] = [
    {"type": "text", "text": "Terima kasih kak 🙏"},
    {"type": "text", "text": "Ongkirnya berapa ke Bandung?"},
    {"type": "text", "text": "Bisa bayar pakai transfer BCA?"},
    {"type": "text", "text": "Stok warna hitam masih ada?"},
    {"type": "image", "caption": "Yang seperti ini ada?"},
    {"type": "audio", "voice": True},
    {"type": "document", "filename": "bukti-transfer.pdf"},
    {"type": "interactive", "button_reply": {"id": "yes", "title": "Ya, lanjut"}},
]


# The demo number's behaviour: a shop open Monday–Saturday in Jakarta that greets new customers, says
# when it is closed and answers the shipping-cost question itself (CHATTER asks it).
DEMO_BEHAVIOUR: dict[str, object] = {
    "business_hours": {
        "enabled": True,
        "timezone": "Asia/Jakarta",
        "weekly": {
            day: [{"start": "08:00", "end": "21:00"}] for day in ("mon", "tue", "wed", "thu", "fri", "sat")
        },
    },
    "auto_reply": {
        "enabled": True,
        "greeting": {
            "enabled": True,
            "reply": {
                "type": "text",
                "text": "Halo! Terima kasih sudah menghubungi Toko Demo. Tim kami segera membalas.",
            },
        },
        "away": {
            "enabled": True,
            "reply": {
                "type": "text",
                "text": "Toko sedang tutup (buka Senin–Sabtu 08.00–21.00 WIB). Kami balas saat buka.",
            },
        },
        "keywords": [
            {
                "id": "ongkir",
                "match": "contains",
                "keywords": ["ongkir", "ongkos kirim"],
                "reply": {"type": "text", "text": "Ongkir Jawa mulai Rp10.000, luar Jawa mulai Rp25.000."},
            }
        ],
    },
    "read_receipts": "on_open",
    "typing_indicator": True,
    "reply_delay_seconds": 2,
}


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to change."""


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (checked before anything starts, for a clear message)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class _SharedLoopServer(uvicorn.Server):
    """A uvicorn server that leaves signals to `run_demo` (two servers share one loop and one Ctrl+C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install nothing: `run_demo` stops both servers on SIGINT/SIGTERM."""
        yield


@dataclass(frozen=True)
class DemoLogin:
    """What the person starting the demo needs to try it."""

    url: str
    phones_url: str
    email: str
    password: str
    api_key: str
    cli: str = "layanify"  # how to run the CLI on the demo's data (its own database, when it chose one)


def demo_settings(base: Settings, *, port: int, simulator_port: int, data_dir: Path) -> Settings:
    """The product's settings for the demo: its own SQLite file, the simulator as the Graph API."""
    database_url = base.database_url
    if "database_url" not in base.model_fields_set:  # not configured: the demo keeps its own file
        database_url = f"sqlite+aiosqlite:///{data_dir / 'demo.db'}"
    return base.model_copy(
        update={
            "database_url": database_url,
            "graph_api_base_url": f"http://127.0.0.1:{simulator_port}",
            "whatsapp_app_secret": SecretStr(DEMO_APP_SECRET),
            "whatsapp_verify_token": SecretStr(DEMO_VERIFY_TOKEN),
            "whatsapp_access_token": None,
            "whatsapp_phone_number_id": None,
            "port": port,
            "in_process_workers": max(base.in_process_workers, 1),
        }
    )


async def prepare(settings: Settings) -> str:
    """Create (or reuse) the demo owner and number; returns a new API key for the owner."""
    engine = create_engine(settings)
    try:
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        keyring = settings_keyring(settings)
        content_crypto.configure_from(settings, keyring)  # the demo workspace takes the setting
        async with unit_of_work(sessionmaker) as session:
            user, workspace, _ = await accounts.create_user(
                session, email=DEMO_EMAIL, password=DEMO_PASSWORD, workspace_name=DEMO_WORKSPACE
            )
            if (
                await numbers_repository.by_phone_number_id(
                    session, DEMO_PHONE_NUMBER_ID, include_deleted=True
                )
                is None
            ):
                number = await numbers.add_number(
                    session,
                    workspace_id=workspace.id,
                    user_id=user.id,
                    data=NumberCreate(
                        phone_number_id=DEMO_PHONE_NUMBER_ID,
                        waba_id=DEMO_WABA_ID,
                        access_token=DEMO_TOKEN,
                        display_name="Toko Demo",
                        number=DEMO_DISPLAY_NUMBER,
                    ),
                    keyring=keyring,
                )
                await automation.save_settings(
                    session, number, DEMO_BEHAVIOUR, user_id=user.id, partial=False
                )
            key, _ = await accounts.create_api_key(
                session, email=DEMO_EMAIL, workspace_name=DEMO_WORKSPACE, name="demo"
            )
        return key
    finally:
        await engine.dispose()


def settings_keyring(settings: Settings) -> Keyring:
    """The keyring the app will use (tokens stored by the demo must decrypt in the app)."""
    return Keyring.from_setting(settings.encryption_keys.get_secret_value())


async def test_demo_number(settings: Settings) -> None:
    """Run the connection test once the simulator is up, so the number shows as connected."""
    engine = create_engine(settings)
    client = GraphClient(base_url=settings.graph_api_base_url, version=settings.graph_api_version)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with unit_of_work(sessionmaker) as session:
            number = await numbers_repository.by_phone_number_id(session, DEMO_PHONE_NUMBER_ID)
            if number is not None:
                await connection.test_connection(
                    session,
                    number,
                    client,
                    settings_keyring(settings),
                    default_rate=settings.rate_limit_per_second,
                )
    finally:
        await client.aclose()
        await engine.dispose()


async def keep_chatting(sim: Simulator, stop: asyncio.Event, *, every: float) -> None:
    """Open the demo's conversations, then have a customer say something every `every` seconds."""
    for wa_id, content in OPENERS:
        await sim.customer_sends(wa_id, dict(content))
        await asyncio.sleep(0.5)
    rng = random.Random()  # noqa: S311 - demo chatter, not security
    talkers = list(CUSTOMERS)[:2]
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every * rng.uniform(0.6, 1.4))
            return
        except TimeoutError:
            pass
        wa_id = rng.choice(talkers)
        await sim.customer_sends(wa_id, dict(rng.choice(CHATTER)))
        if rng.random() < 0.5:
            await sim.customer_reads(wa_id)


async def run_demo(base: Settings, *, host: str, port: int, simulator_port: int, chat_every: float) -> None:
    """Start the simulator and the product, prepare the demo data and keep the customers talking."""
    from layanify.app import create_app

    for option, address, number in (
        ("--port", host, port),
        ("--simulator-port", "127.0.0.1", simulator_port),
    ):
        if not port_free(address, number):
            raise DemoError(
                f"port {number} is already in use on {address}: stop whatever runs there "
                f"(another Layanify?) or choose another port with {option}"
            )
    data_dir = Path("data")
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    settings = demo_settings(base, port=port, simulator_port=simulator_port, data_dir=data_dir)
    api_key = await prepare(settings)
    sim = Simulator(
        SimulatorConfig(
            app_secret=DEMO_APP_SECRET,
            callback_url=f"http://127.0.0.1:{port}/api/webhooks/whatsapp",
            public_url=f"http://127.0.0.1:{simulator_port}",
            status_delays=(0.5, 1.5, 4.0),
        )
    )
    seed_demo(sim)
    for wa_id, name in CUSTOMERS.items():
        sim.add_customer(wa_id, name=name)
    hand_over_the_gil_sooner()
    product = _SharedLoopServer(
        uvicorn.Config(
            create_app(settings, freeze_heap=True),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=False,  # X-Forwarded-* are the app's business (LAYANIFY_TRUSTED_PROXIES)
        )
    )
    simulator = _SharedLoopServer(
        uvicorn.Config(sim.app, host="127.0.0.1", port=simulator_port, log_config=None, access_log=False)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def shutdown() -> None:
        stop.set()
        product.should_exit = simulator.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown)

    async def after_start() -> None:
        while not (product.started and simulator.started):
            if stop.is_set():
                return
            await asyncio.sleep(0.1)
        await test_demo_number(settings)
        login = DemoLogin(
            url=f"http://{host}:{port}",
            phones_url=f"http://127.0.0.1:{simulator_port}/_sim/phones",
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            api_key=api_key,
            cli=cli_command(base, settings),
        )
        print_banner(login)
        await keep_chatting(sim, stop, every=chat_every)

    await asyncio.gather(simulator.serve(), product.serve(), after_start())


def cli_command(base: Settings, demo: Settings) -> str:
    """The `layanify` command as typed here, with the demo's database when the demo chose its own (the
    CLI would otherwise read the configured one, which the demo leaves alone)."""
    command = Path(sys.argv[0])
    if command.name != "layanify":  # run as `python -m layanify`, say
        shown = "layanify"
    elif command.is_absolute() and command.is_relative_to(Path.cwd()):
        shown = str(command.relative_to(Path.cwd()))
    else:
        shown = str(command)
    if demo.database_url == base.database_url:
        return shown
    return f"LAYANIFY_DATABASE_URL={demo.database_url} {shown}"


def print_banner(login: DemoLogin) -> None:
    """Tell the person what to open and how to log in."""
    lines = [
        "",
        "  Layanify WhatsApp demo is running (SQLite under ./data, WhatsApp simulated locally).",
        f"  Open           {login.url}   (API docs: {login.url}/docs)",
        f"  Log in         {login.email} / {login.password}",
        f"  API key        {login.api_key}",
        f"  Customers      {login.phones_url}   (type as a customer, watch the ticks)",
        "  Try            curl -H 'Authorization: Bearer <API key>' " + login.url + "/api/v1/conversations",
        f"  Webhook log    {login.cli} webhooks list   (every event Meta would have sent)",
        "  Real WhatsApp  put WHATSAPP_* in .env.local and run `make run` again (docs/setup.md).",
        "  Stop           Ctrl+C",
        "",
    ]
    print("\n".join(lines), flush=True)
