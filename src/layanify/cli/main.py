"""The `layanify` command."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn

from layanify.accounts import repository as accounts_repository
from layanify.accounts import scopes as api_scopes
from layanify.accounts import service as accounts
from layanify.accounts.models import Role, Scope
from layanify.audit import service as audit
from layanify.automation.tasks import ActionWorker
from layanify.config import ConfigurationError, Settings, get_settings
from layanify.crypto import content as content_crypto
from layanify.crypto.keyring import Keyring, generate_key
from layanify.crypto.rotation import ContentRotation, rotate_content
from layanify.db.engine import create_engine, create_sessionmaker, database_shown
from layanify.db.migrate import upgrade
from layanify.db.session import Sessionmaker, unit_of_work
from layanify.errors import LayanifyError, NotFound
from layanify.media.storage import LocalStorage
from layanify.media.tasks import MediaDownloader
from layanify.messaging.tasks import OutboxWorker
from layanify.numbers import service as numbers_service
from layanify.numbers.tasks import ConnectionMonitor
from layanify.observability import configure_logging, configure_sentry
from layanify.pagination import MAX_ID
from layanify.privacy import service as privacy
from layanify.privacy.retention import Purge
from layanify.privacy.tasks import RetentionWorker
from layanify.ratelimit import SendPacer
from layanify.realtime.broker import broker_for
from layanify.runtime import freeze_startup_heap, hand_over_the_gil_sooner
from layanify.simulator import SimulatorConfig
from layanify.simulator.cli import DEMO_PHONE_NUMBER_ID, DEMO_TOKEN, DEMO_WABA_ID, NumberSeed, run_simulator
from layanify.webhooks import service as webhooks
from layanify.webhooks.models import EventStatus
from layanify.webhooks.routes import payload_of
from layanify.webhooks.tasks import WebhookWorker
from layanify.whatsapp.client import GraphClient

app = typer.Typer(help="Layanify WhatsApp: a self-hostable WhatsApp Business inbox.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Inspect and replay received webhook events.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Read the audit log of security-relevant actions.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys")
privacy_app = typer.Typer(help="Export or erase a contact's data; purge by retention.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")

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
        settings = _settings()
        content_crypto.configure_from(settings)  # message content at rest: sealed and opened here too
        engine = create_engine(settings)
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

    application = create_app(settings, run_workers=workers, freeze_heap=True)
    hand_over_the_gil_sooner()
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # the app believes X-Forwarded-* itself, from LAYANIFY_TRUSTED_PROXIES only
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
            "warning: on SQLite, prefer the workers inside `layanify serve` (the default). Webhook receipts "
            "have a file of their own, but each batch of this worker holds the database's single write lock, "
            "and the web UI's and API's writes wait behind it; scale out on PostgreSQL.",
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
            OutboxWorker(sessionmaker, settings, keyring, graph, pacer, name=f"outbox-{i}", broker=broker)
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
        jobs.append(RetentionWorker(sessionmaker, LocalStorage(settings.media_dir)).run(stop))
        freeze_startup_heap()
        hand_over_the_gil_sooner()
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
    password: Annotated[
        str,
        typer.Option(
            help="at least 12 characters (LAYANIFY_PASSWORD_MIN_LENGTH), not only digits, not a common one",
            prompt=True,
            hide_input=True,
        ),
    ],
    workspace: Annotated[str | None, typer.Option(help="workspace name (created if new)")] = None,
    role: Annotated[Role, typer.Option(help="owner or agent")] = Role.OWNER,
) -> None:
    """Create a user in a workspace (or add an existing user to one)."""

    min_length = _settings().password_min_length

    async def main(sessionmaker: Sessionmaker) -> tuple[int, int, str]:
        async with unit_of_work(sessionmaker) as session:
            user, ws, member = await accounts.create_user(
                session,
                email=email,
                password=password,
                workspace_name=workspace,
                role=role,
                password_min_length=min_length,
            )
            return user.id, ws.id, f"{user.email} is {member.role.value} of workspace {ws.name!r}"

    user_id, workspace_id, line = _with_db(main)
    typer.echo(f"{line} (user {user_id}, workspace {workspace_id})")


@apikey_app.command("create")
def apikey_create(
    email: Annotated[str, typer.Option(help="the user the key acts as")],
    workspace: Annotated[str | None, typer.Option(help="workspace name (default: the user's first)")] = None,
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
    scope: Annotated[
        list[Scope] | None,
        typer.Option(help="read (GET only), send (read + send messages) or admin (default: admin)"),
    ] = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    key_scopes = api_scopes.parse_scopes([s.value for s in scope or []])

    async def main(sessionmaker: Sessionmaker) -> str:
        async with unit_of_work(sessionmaker) as session:
            key, _ = await accounts.create_api_key(
                session, email=email, workspace_name=workspace, name=name, key_scopes=key_scopes
            )
            return key

    key = _with_db(main)
    typer.echo(key)
    typer.secho("Store this key now: it cannot be shown again.", fg="yellow", err=True)


@apikey_app.command("list")
def apikey_list() -> None:
    """Every API key: id, prefix, scopes, user, workspace, name, created, last used, revoked.

    Never the key itself: only its digest is stored.
    """

    async def main(sessionmaker: Sessionmaker) -> list[str]:
        async with unit_of_work(sessionmaker) as session:
            rows = await accounts_repository.all_api_keys(session)
        lines = []
        for key, email, workspace in rows:
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never used"
            state = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "active"
            lines.append(
                f"{key.id}\t{key.prefix}\t{key.scopes}\t{email}\t{workspace!r}\t{key.name!r}\t"
                f"created {key.created_at.isoformat(timespec='seconds')}\t{used}\t{state}"
            )
        return lines

    for line in _with_db(main):
        typer.echo(line)


@apikey_app.command("revoke")
def apikey_revoke(
    prefix: Annotated[str, typer.Option(help="the key's prefix as `apikey list` shows it, or the whole key")],
) -> None:
    """Revoke an API key: it is refused (401) from now on."""

    async def main(sessionmaker: Sessionmaker) -> str:
        async with unit_of_work(sessionmaker) as session:
            key = await accounts.revoke_api_key_by_prefix(session, prefix)
            return f"revoked API key {key.id} ({key.prefix})"

    typer.echo(_with_db(main))


@audit_app.command("list")
def audit_list(
    workspace: Annotated[str | None, typer.Option(help="only this workspace (by name)")] = None,
    action: Annotated[str | None, typer.Option(help="an action (auth.login) or a family (auth.)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The newest audit log entries: time, action, workspace, actor, target, IP and details."""

    async def main(sessionmaker: Sessionmaker) -> list[str]:
        async with unit_of_work(sessionmaker) as session:
            workspace_id: int | None = None
            if workspace is not None:
                found = await accounts_repository.workspace_by_name(session, workspace)
                if found is None:
                    raise LayanifyError(f"no workspace named {workspace!r}")
                workspace_id = found.id
            page = await audit.list_entries(
                session, workspace_id, action=action, limit=limit, all_workspaces=workspace is None
            )
        return [
            f"{e.created_at.isoformat(timespec='seconds')}\t{e.action}\tworkspace={e.workspace_id}\t"
            f"actor={e.actor_user_id}\ttarget={e.target_type}:{e.target_id}\tip={e.ip}\t"
            f"{json.dumps(e.details or {}, sort_keys=True)}"
            for e in page.data
        ]

    for line in _with_db(main):
        typer.echo(line)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new encryption key for LAYANIFY_ENCRYPTION_KEYS."""
    typer.echo(generate_key())


async def _take_received(sessionmaker: Sessionmaker) -> int:
    """On SQLite, move every webhook receipt still waiting in the receipts file into `webhook_events`."""
    moved = 0
    while True:
        async with unit_of_work(sessionmaker) as session:
            taken = await webhooks.take_received(session)
        if not taken:
            return moved
        moved += taken


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret and the encrypted message content, previews, file names, raw
    webhook bodies and media files under the current (first) key; safe to interrupt and re-run. Plain
    content of workspaces that encrypt is encrypted too.

    Add the new key first in LAYANIFY_ENCRYPTION_KEYS and keep the old ones after it until this has
    finished; then the old keys can be removed.
    """
    settings = _settings()
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())

    async def main(sessionmaker: Sessionmaker) -> tuple[int, int, ContentRotation]:
        await _take_received(sessionmaker)  # SQLite: bodies waiting in the receipts file are rotated too
        rotated, total = await numbers_service.rotate_tokens(sessionmaker, keyring)
        return rotated, total, await rotate_content(sessionmaker, LocalStorage(settings.media_dir))

    rotated, total, done = _with_db(main)
    typer.echo(f"re-encrypted {rotated} of {total} stored token(s) under key {keyring.current_id!r}")
    typer.echo(
        f"encrypted under key {keyring.current_id!r}: {done.messages} message(s), {done.previews} "
        f"preview(s), {done.file_names} file name(s), {done.webhook_bodies} webhook body(ies), "
        f"{done.media_files} media file(s)"
        + (f"; {done.missing_files} stored file(s) missing" if done.missing_files else "")
    )


@webhooks_app.command("list")
def webhooks_list(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    status: Annotated[EventStatus | None, typer.Option(help="only events in this state")] = None,
) -> None:
    """The newest webhook events of every workspace."""

    async def main(sessionmaker: Sessionmaker) -> list[str]:
        await _take_received(sessionmaker)  # SQLite: what waits in the receipts file is listed too
        async with unit_of_work(sessionmaker) as session:
            events = await webhooks.list_events(
                session, workspace_id=None, limit=limit, before_id=None, status=status and status.value
            )
            return [
                f"{e.id:>8}  {e.received_at:%Y-%m-%d %H:%M:%S}  {e.status:<9}  attempts={e.attempts}  "
                f"fields={e.fields or '-'}  {_outcome(e.summary)}"
                f"{('  error: ' + e.last_error) if e.last_error else ''}".rstrip()
                for e in events
            ]

    lines = _with_db(main)
    if not lines:
        which = f"{status.value} " if status else ""
        typer.echo(f"No {which}webhook events in {database_shown(_settings())}.")
    for line in lines:
        typer.echo(line)


def _outcome(summary: dict[str, Any] | None) -> str:
    """What processing did with an event, in a word or two per count: why nothing reached the inbox shows
    here (a number not registered, say) without `webhooks show`."""
    if not summary:
        return ""
    text = _counted(summary.get("counts") or {})
    unknown = summary.get("unknown_phone_number_ids") or []
    if unknown:
        text += f" (not registered: {', '.join(unknown)})"
    return text


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
                try:
                    await webhooks.replay_event(session, event_id, workspace_id=None)
                except NotFound as exc:  # the whole command is one transaction: none was queued
                    raise NotFound(f"webhook event {event_id} not found; no event was queued") from exc

    _with_db(main)
    typer.echo(f"queued {len(event_ids)} event(s) for processing")


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())


@privacy_app.command("export")
def privacy_export(
    contact_id: Annotated[int, typer.Option(min=1, max=MAX_ID, help="the contact's id")],
    out: Annotated[Path, typer.Option(help="the zip file to write", dir_okay=False)],
) -> None:
    """Write everything held about a contact (contact.json and its media files) to a zip."""
    settings = _settings()
    partial = out.with_name(out.name + ".partial")

    async def main(sessionmaker: Sessionmaker) -> dict[str, int]:
        async with unit_of_work(sessionmaker) as session:
            workspace_id = await privacy.workspace_of_contact(session, contact_id)
            with partial.open("wb") as target:
                return await privacy.export_contact(
                    session,
                    workspace_id=workspace_id,
                    contact_id=contact_id,
                    actor_user_id=None,
                    storage=LocalStorage(settings.media_dir),
                    target=target,
                )

    try:
        counts = _with_db(main)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    typer.echo(f"wrote {out}: {_counted(counts)}")


@privacy_app.command("erase")
def privacy_erase(
    contact_id: Annotated[int, typer.Option(min=1, max=MAX_ID, help="the contact's id")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
) -> None:
    """Erase a contact: messages, media files, conversations and the raw webhook events about it."""
    if not yes:
        typer.secho("erasing a contact cannot be undone: add --yes to confirm", fg="red", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def main(sessionmaker: Sessionmaker) -> dict[str, int]:
        async with unit_of_work(sessionmaker) as session:
            workspace_id = await privacy.workspace_of_contact(session, contact_id)
            return await privacy.erase_contact(
                session,
                workspace_id=workspace_id,
                contact_id=contact_id,
                actor_user_id=None,
                storage=LocalStorage(settings.media_dir),
            )

    counts = _with_db(main)
    typer.echo(f"erased contact {contact_id}: {_counted(counts)}")


@privacy_app.command("purge")
def privacy_purge() -> None:
    """Delete what each workspace's retention policy keeps no longer (what the hourly purge does)."""
    settings = _settings()

    async def main(sessionmaker: Sessionmaker) -> dict[int, dict[str, int]]:
        return await Purge(sessionmaker, LocalStorage(settings.media_dir)).all_workspaces()

    results = _with_db(main)
    if not results:
        typer.echo("no workspace has a retention limit: nothing to purge")
    for workspace_id, counts in results.items():
        typer.echo(f"workspace {workspace_id}: {_counted(counts)}")


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
