"""A send whose connection was refused never reached Meta: it is retried at once, not after the wait
that protects a send whose answer was lost."""

from __future__ import annotations

import httpx

from layanify.config import Settings
from layanify.simulator import Simulator
from tests.conftest import Tenant
from tests.sending.conftest import LateASGITransport, eventually, running_product


class RefusedTwice(httpx.AsyncBaseTransport):
    """The first two requests find the connection refused; then the simulator answers."""

    def __init__(self, app: httpx.AsyncBaseTransport) -> None:
        self.app = app
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refused < 2:
            self.refused += 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.app.handle_async_request(request)


async def test_a_refused_connection_is_retried_without_the_reconcile_wait(
    live_settings: Settings, sim: tuple[Simulator, LateASGITransport], tenant: Tenant
) -> None:
    simulator = sim[0]
    settings = live_settings.model_copy(update={"outbox_reconcile_seconds": 60.0})
    refusing: list[RefusedTwice] = []

    def refuse_twice(to_simulator: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        refusing.append(RefusedTwice(to_simulator))
        return refusing[0]

    async with running_product(settings, sim, tenant, graph_transport=refuse_twice) as (_, api):
        queued = await api.post(
            "/api/v1/messages",
            json={
                "number_id": tenant.number_id,
                "to": "6281234567890",
                "content": {"type": "template", "name": "hello_world"},
            },
        )
        assert queued.status_code == 202, queued.text

        async def sent() -> object:
            body = (await api.get(f"/api/v1/messages/{queued.json()['id']}")).json()
            return body if body["status"] in ("sent", "delivered", "read") else None

        message = await eventually(sent, within=10)  # far less than the 60 s reconcile wait
        assert refusing[0].refused == 2
        assert message["attempts"] == 3
        assert len(simulator.sent_messages) == 1
