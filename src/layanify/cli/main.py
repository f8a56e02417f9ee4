"""The `layanify` command."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn

from layanify.accounts import service as accounts
from layanify.accounts.models import Role
from layanify.automation.tasks import ActionWorker
from layanify.config import ConfigurationError, Settings, get_settings
from layanify.crypto.keyring import Keyring, generate_key
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.errors import LayanifyError
from layanify.media.tasks import MediaDownloader
from layanify.messaging.tasks import OutboxWorker
from layanify.numbers import service as numbers_service
from layanify.numbers.tasks import ConnectionMonitor
from layanify.observability import configure_logging, configure_sentry
from layanify.pagination import MAX_ID
from layanify.ratelimit import SendPacer
from layanify.realtime.broker import broker_for
from layanify.simulator import SimulatorConfig
from layanify.simulator.cli import DEMO_PHONE_NUMBER_ID, DEMO_TOKEN, DEMO_WABA_ID, NumberSeed, run_simulator
from layanify.webhooks import service as webhooks
from layanify.webhooks.routes import payload_of
from layanify.webhooks.tasks import WebhookWorker
from layanify.whatsapp.client import GraphClient

app = typer.Typer(help="Layanify WhatsApp: a self-hostable WhatsApp Business inbox.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Inspect and replay received webhook events.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys")

T = TypeVar("T")


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings)
    try:
        settings.check_production()
    except ConfigurationError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    return settings


def _with_db(work: Callable[[Sessionmaker], Awaitable[T]], *, migrate: bool = True) -> T:
    """Run `work` with a migrated database; product errors become a clear message and exit code 1."""

    async def main() -> T:
        engine = create_engine(_settings())
        try:
            if migrate:
                await upgrade(engine)
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except LayanifyError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[
        bool, typer.Option("--workers/--no-workers", help="process webhooks in this process")
    ] = True,
) -> None:
    """Run the web app (migrations are applied on start)."""
    settings = _settings()
    configure_sentry(settings)
    from layanify.app import create_app

    application = create_app(settings, run_workers=workers)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=0, max=32, help="webhook workers in this process")] = 1,
    outbox: Annotated[int, typer.Option(min=0, max=8, help="outbox (sending) workers in this process")] = 1,
    media: Annotated[bool, typer.Option("--media/--no-media", help="download inbound media here")] = True,
) -> None:
    """Process webhook events, send queued messages and download media (beside `serve --no-workers`)."""
    settings = _settings()
    configure_sentry(settings)
    if settings.is_sqlite:
        typer.secho(
            "warning: on SQLite, keep the workers inside `layanify serve` (the default). A separate worker "
            "holds SQLite's single write lock and makes incoming webhooks wait; scale out on PostgreSQL.",
            fg="yellow",
            err=True,
        )
    if not settings.redis_url:
        typer.secho(
            "warning: without LAYANIFY_REDIS_URL the real-time events of this worker stay in this process: "
            "pages served by `layanify serve` will not update live. Point both at the same Redis.",
            fg="yellow",
            err=True,
        )

    async def main(sessionmaker: Sessionmaker) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())
        graph = GraphClient(
            base_url=settings.graph_api_base_url,
            version=settings.graph_api_version,
            timeout=settings.graph_timeout_seconds,
        )
        pacer = SendPacer.from_settings(settings)
        broker = broker_for(settings)
        senders = [
            OutboxWorker(sessionmaker, settings, keyring, graph, pacer, name=f"outbox-{i}")
            for i in range(outbox)
        ]

        actors = [
            ActionWorker(sessionmaker, settings, keyring, graph, pacer) for _ in range(1 if outbox else 0)
        ]

        def wake_outbox() -> None:
            for sender in senders:
                sender.wake()

        def wake_automation() -> None:
            wake_outbox()
            for actor in actors:
                actor.wake()

        jobs = [
            WebhookWorker(
                sessionmaker, settings, name=f"worker-{i}", on_automation=wake_automation, broker=broker
            ).run(stop)
            for i in range(concurrency)
        ]
        jobs += [sender.run(stop) for sender in senders]
        jobs += [actor.run(stop) for actor in actors]
        if media:
            jobs.append(MediaDownloader(sessionmaker, settings, keyring, graph).run(stop))
        if settings.connection_check_seconds > 0:
            monitor = ConnectionMonitor(sessionmaker, settings, keyring, graph, on_connected=wake_outbox)
            jobs.append(monitor.run(stop))
        try:
            await asyncio.gather(*jobs)
        finally:
            await broker.aclose()
            await pacer.aclose()
            await graph.aclose()

    _with_db(main)


@app.command()
def migrate() -> None:
    """Apply database migrations."""

    async def main(_: Sessionmaker) -> None:
        return None

    _with_db(main)
    typer.echo("database is up to date")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="login email")],
    password: Annotated[str, typer.Option(help="at least 8 characters", prompt=True, hide_input=True)],
    workspace: Annotated[str | None, typer.Option(help="workspace name (created if new)")] = None,
    role: Annotated[Role, typer.Option(help="owner or agent")] = Role.OWNER,
) -> None:
    """Create a user in a workspace (or add an existing user to one)."""

    async def main(sessionmaker: Sessionmaker) -> tuple[int, int, str]:
        async with unit_of_work(sessionmaker) as session:
            user, ws, member = await accounts.create_user(
                session, email=email, password=password, workspace_name=workspace, role=role
            )
            return user.id, ws.id, f"{user.email} is {member.role.value} of workspace {ws.name!r}"

    user_id, workspace_id, line = _with_db(main)
    typer.echo(f"{line} (user {user_id}, workspace {workspace_id})")


@apikey_app.command("create")
def apikey_create(
    email: Annotated[str, typer.Option(help="the user the key acts as")],
    workspace: Annotated[str | None, typer.Option(help="workspace name (default: the user's first)")] = None,
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""

    async def main(sessionmaker: Sessionmaker) -> str:
        async with unit_of_work(sessionmaker) as session:
            key, _ = await accounts.create_api_key(session, email=email, workspace_name=workspace, name=name)
            return key

    key = _with_db(main)
    typer.echo(key)
    typer.secho("Store this key now: it cannot be shown again.", fg="yellow", err=True)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new encryption key for LAYANIFY_ENCRYPTION_KEYS."""
    typer.echo(generate_key())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the current (first) key; safe to interrupt and re-run.

    Add the new key first in LAYANIFY_ENCRYPTION_KEYS and keep the old ones after it until this has
    finished; then the old keys can be removed.
    """
    settings = _settings()
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())

    async def main(sessionmaker: Sessionmaker) -> tuple[int, int]:
        return await numbers_service.rotate_tokens(sessionmaker, keyring)

    rotated, total = _with_db(main)
    typer.echo(f"re-encrypted {rotated} of {total} stored token(s) under key {keyring.current_id!r}")


@webhooks_app.command("list")
def webhooks_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    status: Annotated[str | None, typer.Option(help="pending, processed or failed")] = None,
) -> None:
    """The newest webhook events of every workspace."""

    async def main(sessionmaker: Sessionmaker) -> list[str]:
        async with unit_of_work(sessionmaker) as session:
            events = await webhooks.list_events(
                session, workspace_id=None, limit=limit, before_id=None, status=status
            )
            return [
                f"{e.id:>8}  {e.received_at:%Y-%m-%d %H:%M:%S}  {e.status:<9}  attempts={e.attempts}  "
                f"fields={e.fields or '-'}  {('error: ' + e.last_error) if e.last_error else ''}".rstrip()
                for e in events
            ]

    for line in _with_db(main):
        typer.echo(line)


@webhooks_app.command("show")
def webhooks_show(event_id: Annotated[int, typer.Argument(min=1, max=MAX_ID)]) -> None:
    """One event: its state, summary and payload."""

    async def main(sessionmaker: Sessionmaker) -> dict[str, object]:
        async with unit_of_work(sessionmaker) as session:
            e = await webhooks.get_event(session, event_id, workspace_id=None)
            return {
                "id": e.id,
                "received_at": e.received_at.isoformat(),
                "status": e.status,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "workspace_id": e.workspace_id,
                "summary": e.summary,
                "payload": payload_of(e),
            }

    json.dump(_with_db(main), sys.stdout, indent=2, ensure_ascii=False)
    typer.echo()


@webhooks_app.command("replay")
def webhooks_replay(event_ids: Annotated[list[int], typer.Argument(min=1, max=MAX_ID)]) -> None:
    """Queue events to be processed again (safe: nothing is stored twice)."""

    async def main(sessionmaker: Sessionmaker) -> None:
        async with unit_of_work(sessionmaker) as session:
            for event_id in event_ids:
                await webhooks.replay_event(session, event_id, workspace_id=None)

    _with_db(main)
    typer.echo(f"queued {len(event_ids)} event(s) for processing")


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="keep it on loopback: the control API has no auth")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8090,
    callback_url: Annotated[
        str | None,
        typer.Option(help="the product's webhook URL, e.g. http://127.0.0.1:8000/api/webhooks/whatsapp"),
    ] = None,
    app_secret: Annotated[
        str | None, typer.Option(help="signs webhooks (default: WHATSAPP_APP_SECRET)")
    ] = None,
    token: Annotated[str, typer.Option(help="the demo number's access token")] = DEMO_TOKEN,
    phone_number_id: Annotated[
        str, typer.Option(help="the demo number's phone number id")
    ] = DEMO_PHONE_NUMBER_ID,
    waba_id: Annotated[str, typer.Option(help="the demo number's WABA id")] = DEMO_WABA_ID,
) -> None:
    """Run the local Cloud API simulator (faults and limits: LAYANIFY_SIMULATOR_*, docs/simulator.md)."""
    settings = get_settings()
    secret = app_secret or (
        settings.whatsapp_app_secret.get_secret_value()
        if settings.whatsapp_app_secret
        else "simulator-app-secret"
    )
    config = SimulatorConfig.from_env(app_secret=secret, callback_url=callback_url)
    typer.echo(f"Cloud API simulator on http://{host}:{port} (phones: http://{host}:{port}/_sim/phones)")
    run_simulator(
        host=host,
        port=port,
        config=config,
        numbers=[NumberSeed(phone_number_id=phone_number_id, waba_id=waba_id, token=token)],
    )


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address the product listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the product's port")] = 8000,
    simulator_port: Annotated[int, typer.Option(help="the simulator's port")] = 8090,
    chat_every: Annotated[
        float, typer.Option(min=1, help="seconds between simulated customers' messages")
    ] = 30,
) -> None:
    """Run the product against a local WhatsApp simulator with a demo workspace and chatting customers."""
    settings = get_settings()
    configure_logging(settings)
    from layanify.cli.demo import DemoError, run_demo

    try:
        asyncio.run(
            run_demo(settings, host=host, port=port, simulator_port=simulator_port, chat_every=chat_every)
        )
    except DemoError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc


@app.command()
def up() -> None:
    """What `make run` starts: the product with Meta credentials configured, the demo without them."""
    settings = get_settings()
    if settings.seed_number_configured:
        typer.echo("WHATSAPP_* credentials found: serving with the real Cloud API.")
        serve(host=None, port=None, workers=True)
        return
    typer.echo("No WHATSAPP_ACCESS_TOKEN / WHATSAPP_PHONE_NUMBER_ID configured: starting the demo.")
    demo(host=settings.host, port=settings.port, simulator_port=8090, chat_every=30)
