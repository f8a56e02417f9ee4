"""The Cloud API simulator: in-process API, ASGI app (Graph + control + phone page), lifecycle."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.requests import Request

from layanify.simulator.config import SimulatorConfig
from layanify.simulator.control import control_router
from layanify.simulator.emitter import Emitter
from layanify.simulator.faults import change_faults
from layanify.simulator.graph import BODY_KEY, download_media, graph_routes, unknown_path_route
from layanify.simulator.ids import IdMaker
from layanify.simulator.limits import Limits
from layanify.simulator.media import Media
from layanify.simulator.messaging import Messaging
from layanify.simulator.phones import phones_router
from layanify.simulator.state import Customer, Number, Template, World

_REDACTED = "Bearer <redacted>"


class Simulator:
    """A local WhatsApp Cloud API: Graph endpoints, signed webhooks, scripted customers and faults."""

    def __init__(self, config: SimulatorConfig, *, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.rng = random.Random(config.seed)  # noqa: S311 - simulated behaviour, not security
        self.ids = IdMaker()
        self.world = World(request_log_limit=config.request_log_limit)
        self._own_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(timeout=config.webhook_timeout_seconds)
        self.emitter = Emitter(config, self.http, self.rng)
        self.limits = Limits(
            per_second=config.rate_limit_per_second,
            burst_seconds=config.rate_limit_burst_seconds,
            pair_burst=config.pair_rate_burst,
            pair_per_seconds=config.pair_rate_per_seconds,
        )
        self.messaging = Messaging(self.world, config, self.emitter, self.ids)
        self.app = self._build_app()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the webhook emitter (it also starts by itself on the first scheduled event)."""
        self.emitter.start()

    async def stop(self) -> None:
        """Stop the emitter (pending webhooks are dropped) and close the client the simulator owns."""
        await self.emitter.stop()
        if self._own_http:
            await self.http.aclose()

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the tests' API
        """Wait until every scheduled webhook was delivered or given up (TimeoutError after `timeout`)."""
        await self.emitter.wait_idle(timeout)

    def _build_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        # Graph routes first (their version segment only matches v<major>.<minor>): sends are the hot path.
        app = FastAPI(
            title="Layanify Cloud API simulator",
            lifespan=lifespan,
            docs_url="/_sim/docs",
            redoc_url=None,
            openapi_url="/_sim/openapi.json",
        )
        app.state.simulator = self
        app.router.routes[:0] = graph_routes(self)
        app.include_router(phones_router(self))
        app.include_router(control_router(self))

        async def media_download(request: Request) -> Any:
            return await download_media(self, request)

        app.add_route("/_sim/media/{media_id}", media_download, methods=["GET"])
        app.router.routes.append(unknown_path_route(self))
        return app

    # --- setup ----------------------------------------------------------------------------------

    def add_number(
        self,
        phone_number_id: str,
        *,
        waba_id: str,
        token: str,
        display_phone_number: str,
        verified_name: str = "Layanify Demo",
        quality_rating: str = "GREEN",
        throughput_level: str = "STANDARD",
    ) -> None:
        """Register a business number of a WABA, answering to `token`."""
        number = Number(
            phone_number_id,
            waba_id,
            token,
            display_phone_number,
            verified_name,
            quality_rating,
            throughput_level,
        )
        self.world.numbers[phone_number_id] = number
        self.world.tokens[token] = phone_number_id
        self.world.revoked.discard(token)
        self.world.subscribed.setdefault(waba_id, True)

    def revoke_token(self, token: str) -> None:
        """Revoke a token: every request carrying it gets 190 from now on."""
        self.world.tokens.pop(token, None)
        self.world.revoked.add(token)

    def add_template(
        self,
        waba_id: str,
        *,
        name: str,
        language: str,
        body_params: int = 0,
        header: str | None = None,
        category: str = "UTILITY",
        status: str = "APPROVED",
        body_text: str = "",
    ) -> None:
        """Add (or replace) a message template of a WABA."""
        text = body_text or " ".join(["Hello"] + [f"{{{{{i}}}}}" for i in range(1, body_params + 1)])
        templates = self.world.templates.setdefault(waba_id, [])
        templates[:] = [t for t in templates if not (t.name == name and t.language == language)]
        template_id = str(700_000_000_000_000 + len(self.world.templates) * 1000 + len(templates) + 1)
        templates.append(
            Template(
                template_id,
                waba_id,
                name,
                language,
                category.upper(),
                status.upper(),
                text,
                body_params,
                header.upper() if header else None,
            )
        )

    def add_customer(
        self, wa_id: str, *, name: str, undeliverable: bool = False, last_message_at: datetime | None = None
    ) -> None:
        """Add (or update) a simulated customer; `last_message_at` opens their window from then."""
        customer = self.world.customers.get(wa_id) or Customer(wa_id=wa_id, name=name)
        customer.name = name
        customer.undeliverable = undeliverable
        if last_message_at is not None:
            customer.last_inbound_at = last_message_at.timestamp()
        self.world.customers[wa_id] = customer

    # --- customers' side ------------------------------------------------------------------------

    async def customer_sends(
        self,
        wa_id: str,
        content: dict[str, Any],
        *,
        phone_number_id: str | None = None,
        context_wamid: str | None = None,
    ) -> str:
        """The customer sends a message (spec like {"type": "text", "text": "Halo"}); its inbound wamid."""
        return self.messaging.customer_sends(
            wa_id,
            content,
            phone_number_id=phone_number_id,
            context_wamid=context_wamid,
            media_url=self._media_url,
        )

    async def customer_reads(self, wa_id: str, *, phone_number_id: str | None = None) -> list[str]:
        """The customer reads every business message not yet read (a `read` webhook each)."""
        return self.messaging.customer_reads(wa_id, phone_number_id=phone_number_id)

    def _media_url(self, media: Media) -> str | None:
        if self.config.public_url is None:
            return None
        return f"{self.config.public_url.rstrip('/')}/_sim/media/{media.id}?mid={media.id}"

    # --- faults and inspection ------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> None:
        """Change faults at run time (latency_ms, error_rate_5xx, timeout_rate, duplicate_rate, …)."""
        change_faults(self.config, changes)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every Graph request received (oldest first), Authorization redacted."""
        return [_request_record(raw) for raw in self.world.requests]

    @property
    def sent_messages(self) -> list[dict[str, Any]]:
        """Every message the businesses sent, with its current status."""
        return [message.as_json() for message in self.world.outbound.values()]

    @property
    def delivered_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt: delivery id, attempt, status code or error, body."""
        return list(self.emitter.log)

    def record(self, request: Request, status: int, payload: Any, started: float) -> None:
        """Log one Graph request and its answer; kept raw (formatted when read) to keep sends cheap."""
        scope = request.scope
        raw = (scope["method"], scope["path"], scope["query_string"], scope["headers"], scope.get(BODY_KEY))
        self.world.requests.append((*raw, status, payload, started, time.time()))


def _request_record(raw: tuple[Any, ...]) -> dict[str, Any]:
    method, path, query, raw_headers, body, status, payload, started, ended = raw
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers}
    if "authorization" in headers:
        headers["authorization"] = _REDACTED
    return {
        "method": method,
        "path": path,
        "query": query.decode("latin-1"),
        "headers": headers,
        "body": body,
        "status": status,
        "response": payload,
        "time": started,
        "duration_ms": (ended - started) * 1000,
    }
