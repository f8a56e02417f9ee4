"""The control API under /_sim: script customers, change faults, inspect requests and webhooks.

No authentication: it is for local development and tests only, and the CLI binds to loopback.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from layanify.simulator.faults import fault_settings
from layanify.simulator.inbound import SpecError

if TYPE_CHECKING:
    from layanify.simulator.app import Simulator


class CustomerIn(BaseModel):
    """A simulated customer to add or update."""

    wa_id: str = Field(pattern=r"^\d{6,15}$")
    name: str
    undeliverable: bool = False
    last_message_at: datetime | None = None


class CustomerMessageIn(BaseModel):
    """What a customer sends: a spec such as {"type": "text", "text": "Halo"} plus routing options."""

    model_config = {"extra": "allow"}

    type: str
    phone_number_id: str | None = None
    context_wamid: str | None = None


class ReadIn(BaseModel):
    """Which business number's messages the customer reads (all when omitted)."""

    phone_number_id: str | None = None


class NumberIn(BaseModel):
    """A business number to register."""

    phone_number_id: str
    waba_id: str
    token: str
    display_phone_number: str
    verified_name: str = "Layanify Demo"
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"


class TokenIn(BaseModel):
    """A token to revoke."""

    token: str


class TemplateIn(BaseModel):
    """A message template to add to a WABA."""

    waba_id: str
    name: str
    language: str
    body_params: int = 0
    header: str | None = None
    category: str = "UTILITY"
    status: str = "APPROVED"
    body_text: str = ""


def control_router(sim: Simulator) -> APIRouter:
    """The `/_sim` JSON routes bound to one simulator."""
    router = APIRouter(prefix="/_sim", tags=["simulator control"])

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "pending_webhooks": sim.emitter.pending, "numbers": len(sim.world.numbers)}

    @router.get("/customers")
    async def customers() -> list[dict[str, Any]]:
        return [
            {
                "wa_id": c.wa_id,
                "name": c.name,
                "undeliverable": c.undeliverable,
                "last_inbound_at": c.last_inbound_at,
            }
            for c in sim.world.customers.values()
        ]

    @router.post("/customers", status_code=201)
    async def add_customer(body: CustomerIn) -> dict[str, Any]:
        sim.add_customer(
            body.wa_id, name=body.name, undeliverable=body.undeliverable, last_message_at=body.last_message_at
        )
        return {"wa_id": body.wa_id}

    @router.post("/customers/{wa_id}/messages", status_code=201)
    async def customer_sends(wa_id: str, body: CustomerMessageIn) -> dict[str, Any]:
        spec = body.model_dump(exclude={"phone_number_id", "context_wamid"}, exclude_none=True)
        try:
            wamid = await sim.customer_sends(
                wa_id, spec, phone_number_id=body.phone_number_id, context_wamid=body.context_wamid
            )
        except (SpecError, KeyError) as error:
            raise HTTPException(422, str(error)) from None
        return {"id": wamid}

    @router.post("/customers/{wa_id}/read")
    async def customer_reads(wa_id: str, body: ReadIn | None = None) -> dict[str, Any]:
        read = await sim.customer_reads(wa_id, phone_number_id=body.phone_number_id if body else None)
        return {"read": read}

    @router.get("/customers/{wa_id}/conversation")
    async def conversation(wa_id: str) -> dict[str, Any]:
        return sim.messaging.conversation(wa_id)

    @router.get("/requests")
    async def requests(limit: int | None = None, path: str | None = None) -> list[dict[str, Any]]:
        chosen = [r for r in sim.requests if path is None or path in r["path"]]
        return chosen[-limit:] if limit else chosen

    @router.delete("/requests", status_code=204)
    async def clear_requests() -> None:
        sim.world.requests.clear()

    @router.get("/sent")
    async def sent() -> list[dict[str, Any]]:
        return sim.sent_messages

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return fault_settings(sim.config)

    @router.put("/faults")
    async def put_faults(changes: dict[str, Any]) -> dict[str, Any]:
        try:
            sim.set_faults(**changes)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return fault_settings(sim.config)

    @router.post("/numbers", status_code=201)
    async def add_number(body: NumberIn) -> dict[str, Any]:
        sim.add_number(**body.model_dump())
        return {"phone_number_id": body.phone_number_id}

    @router.post("/tokens/revoke")
    async def revoke(body: TokenIn) -> dict[str, Any]:
        sim.revoke_token(body.token)
        return {"revoked": True}

    @router.post("/templates", status_code=201)
    async def add_template(body: TemplateIn) -> dict[str, Any]:
        values = body.model_dump()
        sim.add_template(values.pop("waba_id"), **values)
        return {"name": body.name, "language": body.language}

    @router.get("/webhooks")
    async def webhooks(limit: int | None = None) -> list[dict[str, Any]]:
        log = sim.delivered_webhooks
        return log[-limit:] if limit else log

    return router
