"""The application factory: wiring, lifespan (migrations, writer, in-process workers), routers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from layanify import __version__
from layanify.accounts import repository as accounts_repository
from layanify.accounts.routes import router as accounts_router
from layanify.accounts.security import SessionSigner
from layanify.audit.routes import router as audit_router
from layanify.automation.routes import router as automation_router
from layanify.automation.tasks import ActionWorker
from layanify.config import Settings, get_settings
from layanify.contacts.routes import router as contacts_router
from layanify.conversations.routes import router as conversations_router
from layanify.crypto import content as content_crypto
from layanify.crypto.keyring import Keyring
from layanify.crypto.routes import router as encryption_router
from layanify.db.engine import create_engine, create_sessionmaker
from layanify.db.migrate import upgrade
from layanify.db.session import WriteGate, unit_of_work
from layanify.errors import install_error_handlers
from layanify.health.routes import router as health_router
from layanify.input_limits import install_input_limits
from layanify.media.formats import MAX_UPLOAD_BYTES
from layanify.media.routes import FORM_OVERHEAD_BYTES
from layanify.media.routes import router as media_router
from layanify.media.storage import LocalStorage
from layanify.media.tasks import MediaDownloader
from layanify.messaging.routes import router as messaging_router
from layanify.messaging.tasks import OutboxWorker
from layanify.numbers import service as numbers
from layanify.numbers.routes import router as numbers_router
from layanify.numbers.routes import trpc_router as numbers_trpc_router
from layanify.numbers.tasks import ConnectionMonitor
from layanify.observability import configure_logging, configure_sentry, get_logger
from layanify.privacy.routes import router as privacy_router
from layanify.privacy.tasks import RetentionWorker
from layanify.proxies import Network, apply_forwarded
from layanify.ratelimit import SendPacer
from layanify.realtime.broker import broker_for
from layanify.realtime.routes import router as realtime_router
from layanify.runtime import freeze_startup_heap
from layanify.web.setup import install_web, render_error
from layanify.webhooks.ingest import EventWriter
from layanify.webhooks.receipt_process import ReceiptProcess
from layanify.webhooks.routes import WEBHOOK_PATH, receive_webhook
from layanify.webhooks.routes import api as webhooks_api
from layanify.webhooks.routes import router as webhooks_router
from layanify.webhooks.tasks import WebhookWorker
from layanify.whatsapp.client import GraphClient

log = get_logger(__name__)

DESCRIPTION = """
Layanify WhatsApp: receive, read and send WhatsApp Business messages, and manage the connected numbers.

Authenticate with `Authorization: Bearer <api key>` (create one with `layanify apikey create`)
or with the session cookie set by `POST /api/v1/auth/login`.

Meta delivers webhooks to `POST /api/webhooks/whatsapp` (signed with `X-Hub-Signature-256`);
that route is for Meta only and is not listed below.
"""


class LayanifyApp(FastAPI):
    """FastAPI, with Meta's webhook POST answered before routing and middleware: it is the hot path.

    Behind `trusted_proxies` (LAYANIFY_TRUSTED_PROXIES), every request's client address and scheme are
    first taken from the proxy's X-Forwarded-For / X-Forwarded-Proto (`layanify.proxies`).
    """

    trusted_proxies: list[Network] = []  # noqa: RUF012 - replaced per instance, never mutated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted_proxies:
            apply_forwarded(scope, self.trusted_proxies)
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == WEBHOOK_PATH:
            await receive_webhook(self.state, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    run_workers: bool | None = None,
    migrate: bool = True,
    graph_client: GraphClient | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the app. Workers run in-process unless `run_workers` is False (scale-out: `layanify worker`).

    `graph_client` replaces the Graph API client (tests point one at the simulator in-process).
    `freeze_heap` (the server commands, not tests): once started, freeze the start-up heap
    (`runtime.freeze_startup_heap`).
    """
    settings = settings or get_settings()
    settings.check_production()
    keyring = Keyring.from_setting(settings.encryption_keys.get_secret_value())
    content_crypto.configure_from(settings, keyring)  # message content at rest (process-wide)
    workers_wanted = settings.in_process_workers if run_workers is not False else 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        sessionmaker = create_sessionmaker(engine)
        if migrate:
            await upgrade(engine)
        async with unit_of_work(sessionmaker) as session:
            await numbers.register_seed_number(session, settings, keyring)
            if await accounts_repository.first_owner(session) is None:
                log.warning(
                    "no_owner_yet",
                    hint="create the first owner: .venv/bin/layanify user create --email you@example.com",
                )
        if not settings.whatsapp_app_secret:
            log.warning(
                "webhooks_refused_until_configured", hint="set WHATSAPP_APP_SECRET to receive Meta's webhooks"
            )
        gate = WriteGate(enabled=settings.is_sqlite)  # this process's workers take turns on the file
        workers: list[WebhookWorker] = []

        def wake_workers() -> None:
            for worker in workers:
                worker.wake()

        in_flight = 1 if settings.is_sqlite else 2
        sqlite_file = settings.sqlite_path()
        # A child process commits receipts where it can: a SQLite file, or PostgreSQL through asyncpg.
        separate = settings.webhook_writer_process() and (
            sqlite_file is not None or engine.dialect.driver == "asyncpg"
        )
        process = ReceiptProcess(settings, sqlite_file=sqlite_file, in_flight=in_flight) if separate else None
        writer = EventWriter(
            engine,
            max_batch=settings.webhook_ingest_batch,
            on_stored=wake_workers,
            gate=gate,
            in_flight=in_flight,
            sqlite_file=sqlite_file,
            process=process,
        )
        graph = app.state.graph_client = graph_client or GraphClient(
            base_url=settings.graph_api_base_url,
            version=settings.graph_api_version,
            timeout=settings.graph_timeout_seconds,
        )
        pacer = SendPacer.from_settings(settings)
        broker = app.state.broker = broker_for(settings)  # real-time events: GET /api/v1/events
        senders = [
            OutboxWorker(
                sessionmaker, settings, keyring, graph, pacer, name=f"outbox-{i}", gate=gate, broker=broker
            )
            for i in range(1 if workers_wanted else 0)
        ]
        actors = [
            ActionWorker(sessionmaker, settings, keyring, graph, pacer, gate=gate)
            for _ in range(1 if workers_wanted else 0)
        ]

        def wake_outbox() -> None:
            for sender in senders:
                sender.wake()

        def wake_automation() -> None:
            wake_outbox()
            for actor in actors:
                actor.wake()

        workers.extend(
            WebhookWorker(
                sessionmaker,
                settings,
                name=f"in-process-{i}",
                gate=gate,
                receipts_busy=writer.pressed,
                receipt_rate=writer.receipt_rate,
                on_automation=wake_automation,
                broker=broker,
            )
            for i in range(workers_wanted)
        )

        await writer.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop), name=f"webhook-worker-{i}") for i, w in enumerate(workers)]
        tasks += [asyncio.create_task(s.run(stop), name=f"outbox-{i}") for i, s in enumerate(senders)]
        tasks += [asyncio.create_task(a.run(stop), name="chat-actions") for a in actors]
        if workers_wanted:
            downloader = MediaDownloader(
                sessionmaker, settings, keyring, graph, gate=gate, receipts_busy=writer.pressed
            )
            tasks.append(asyncio.create_task(downloader.run(stop), name="media-downloader"))
        if workers_wanted:
            retention = RetentionWorker(sessionmaker, LocalStorage(settings.media_dir), gate=gate)
            tasks.append(asyncio.create_task(retention.run(stop), name="retention-purge"))
        if workers_wanted and settings.connection_check_seconds > 0:
            monitor = ConnectionMonitor(sessionmaker, settings, keyring, graph, on_connected=wake_outbox)
            tasks.append(asyncio.create_task(monitor.run(stop), name="connection-monitor"))
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.event_writer = writer
        app.state.wake_workers = wake_workers
        app.state.wake_outbox = wake_outbox
        app.state.wake_automation = wake_automation
        log.info(
            "started", version=__version__, database=engine.dialect.name, in_process_workers=len(workers)
        )
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            await writer.stop()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await broker.aclose()  # after the workers' last publishes; ends the open event streams
            await pacer.aclose()
            if graph_client is None:
                await graph.aclose()
            await engine.dispose()
            log.info("stopped")

    app = LayanifyApp(
        title="Layanify WhatsApp", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.keyring = keyring
    app.trusted_proxies = list(settings.trusted_proxies)
    app.state.session_signer = SessionSigner(
        settings.secret_key.get_secret_value(), settings.session_max_age_seconds
    )
    install_error_handlers(app, render_error)  # the UI's pages and toasts; JSON on /api/*
    # Before the web UI's middleware, which then wraps it: its 413s carry the security headers too.
    install_input_limits(
        app,
        limit=settings.api_max_body_bytes,
        limits={"/api/v1/media": MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES},  # uploads: their own limit
    )
    install_web(app, settings)
    for router in (
        health_router,
        webhooks_router,
        accounts_router,
        audit_router,
        conversations_router,
        messaging_router,
        numbers_router,
        numbers_trpc_router,
        contacts_router,
        webhooks_api,
        media_router,
        automation_router,
        realtime_router,
        encryption_router,
        privacy_router,
    ):
        app.include_router(router)
    return app


def build_app() -> FastAPI:
    """Entry point for `uvicorn --factory layanify.app:build_app`: settings from the environment."""
    settings = get_settings()
    configure_logging(settings)
    configure_sentry(settings)
    return create_app(settings)
